"""Im2col: the receptive fields of a convolution, laid out as channels."""
from ..backend import get_array_module
from ..im2col import ConvGeometry, col2im, im2col
from ..layer import Layer, register_layer
from .convolution import read_spatial


@register_layer
class Im2colLayer(Layer):
    """top[n, (c, *k), *o] = the input value that kernel offset k of output position o reads
    in channel c of item n (0 in the padding): Caffe's im2col buffer of each item, as a blob
    of shape (N, C * prod(kernel), *output). Reads convolution_param kernel_size |
    kernel_h/kernel_w, stride, pad, dilation and axis (the channel axis). Backward is col2im.
    """

    type = "Im2col"
    exact_num_bottom = exact_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.convolution_param
        shape = bottom[0].shape
        try:
            self.axis = bottom[0].canonical_axis_index(p.axis)
        except IndexError:
            raise self.error("convolution_param.axis", f"{p.axis} is out of range for the "
                                                       f"{len(shape)}-D input {shape}") from None
        nd = len(shape) - self.axis - 1
        if nd < 1:
            raise self.error("convolution_param.axis", f"{p.axis} leaves no spatial axis in "
                                                       f"the input {shape}")
        self.kernel = read_spatial(self, p, "kernel_size", nd, None, ("kernel_h", "kernel_w"))
        self.stride = read_spatial(self, p, "stride", nd, 1, ("stride_h", "stride_w"))
        self.pad = read_spatial(self, p, "pad", nd, 0, ("pad_h", "pad_w"))
        self.dilation = read_spatial(self, p, "dilation", nd, 1)
        for field, values in (("kernel_size", self.kernel), ("stride", self.stride),
                              ("dilation", self.dilation)):
            if min(values) < 1:
                raise self.error(f"convolution_param.{field}",
                                 f"must be positive on every axis, found {values}")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != self.axis + 1 + len(self.kernel):
            raise self.error("bottom", f"input shape {shape} does not have the {len(self.kernel)} "
                                       f"spatial axes after axis {self.axis} set up for")
        self.num, self.channels = bottom[0].count_range(0, self.axis), shape[self.axis]
        g = self.geometry = ConvGeometry(shape[self.axis + 1:], self.kernel, self.stride,
                                         self.pad, self.dilation)
        if min(g.out) < 1:
            raise self.error("convolution_param.kernel_size",
                             f"the (dilated) kernel {self.kernel} is larger than the padded "
                             f"input {g.size} (pad {self.pad})")
        top[0].reshape(shape[:self.axis] + (self.channels * g.kernel_count,) + g.out)

    def forward(self, bottom, top):
        g = self.geometry
        x = bottom[0].data.reshape((self.num, self.channels) + g.size)
        col = im2col(x, g).reshape(-1, self.num, g.out_count)
        top[0].data[...] = col.transpose(1, 0, 2).reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        g = self.geometry
        dcol = top[0].diff.reshape(self.num, -1, g.out_count).transpose(1, 0, 2)
        dcol = get_array_module(dcol).ascontiguousarray(dcol).reshape(-1, self.num * g.out_count)
        bottom[0].diff[...] = col2im(dcol, g, self.num, self.channels).reshape(bottom[0].shape)
