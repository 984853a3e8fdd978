"""Im2col: the receptive fields of a convolution, laid out as channels."""
from ..backend import get_array_module
from ..im2col import ConvGeometry, col2im, im2col
from ..layer import Layer, register_layer
from .convolution import read_conv_geometry


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
        read_conv_geometry(self, bottom[0], "convolution_param.")

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
