"""Deconvolution: the transpose of Convolution (its backward pass run forward)."""
from ..backend import get_array_module
from ..im2col import ConvGeometry, col2im, im2col
from ..layer import register_layer
from .convolution import ConvolutionLayer


@register_layer
class DeconvolutionLayer(ConvolutionLayer):
    """y = W^T * x + b: scatters each input pixel through the kernel into the output, which
    grows to stride (in - 1) + dilation (kernel - 1) + 1 - 2 pad per spatial axis.

    Reads the same convolution_param fields as Convolution. Weights are (channels,
    num_output / group, *kernel) (input channels first, Caffe's layout), bias (num_output,).
    The bilinear filler with group = channels = num_output gives the usual upsampling layer.
    """

    type = "Deconvolution"

    def weight_shape(self):
        return (self.channels, self.num_output // self.group) + self.kernel

    def reshape(self, bottom, top):
        self.check_bottoms(bottom)
        shape = bottom[0].shape
        size = shape[self.axis + 1:]
        out = tuple(s * (n - 1) + d * (k - 1) + 1 - 2 * p for n, k, s, p, d in
                    zip(size, self.kernel, self.stride, self.pad, self.dilation))
        if min(out) < 1:
            raise self.error("pad", f"pad {self.pad} leaves no output for input {size} (output "
                                    f"{out}); lower the pad")
        self.num = bottom[0].count_range(0, self.axis)
        self.in_count = bottom[0].count_range(self.axis + 1)
        # The geometry of the equivalent convolution: from the output back to the input.
        self.geometry = ConvGeometry(out, self.kernel, self.stride, self.pad, self.dilation)
        for t in top:
            t.reshape(shape[:self.axis] + (self.num_output,) + out)

    # Convolution may send its GPU passes to custom kernels; Deconvolution's are its own xp code.
    def forward_gpu(self, bottom, top):
        return self.forward(bottom, top)

    def backward_gpu(self, top, propagate_down, bottom):
        return self.backward(top, propagate_down, bottom)

    def _grouped_input(self, x):
        """x (num, C, *in) as (G, C / G, num * P): the GEMM operand, columns ordered (n, p)."""
        x = x.reshape(self.num, self.channels, self.in_count).transpose(1, 0, 2)
        return x.reshape(self.group, self.channels // self.group, -1)

    def forward(self, bottom, top):
        xp = get_array_module(bottom[0].data)
        G, O = self.group, self.num_output
        w = self.blobs[0].data.reshape(G, self.channels // G, -1)
        for b, t in zip(bottom, top):
            col = xp.matmul(w.transpose(0, 2, 1), self._grouped_input(b.data))
            y = col2im(col.reshape(O * self.geometry.kernel_count, -1), self.geometry, self.num, O)
            if self.bias_term:
                y = y + self.blobs[1].data.reshape((1, O) + (1,) * self.geometry.nd)
            t.data[...] = y.reshape(t.shape)

    def backward(self, top, propagate_down, bottom):
        xp = get_array_module(top[0].diff)
        G, O, C = self.group, self.num_output, self.channels
        w = self.blobs[0].data.reshape(G, C // G, -1)
        for i, (t, b) in enumerate(zip(top, bottom)):
            dy = t.diff.reshape((self.num, O) + self.geometry.size)
            if self.bias_term and self.param_propagate_down[1]:
                self.blobs[1].diff[...] += dy.reshape(self.num, O, -1).sum(axis=(0, 2))
            if not (self.param_propagate_down[0] or propagate_down[i]):
                continue
            dcol = im2col(dy, self.geometry).reshape(G, -1, self.num * self.in_count)
            if self.param_propagate_down[0]:
                x = self._grouped_input(b.data)
                self.blobs[0].diff[...] += xp.matmul(x, dcol.transpose(0, 2, 1)).reshape(
                    self.blobs[0].shape)
            if propagate_down[i]:
                dx = xp.matmul(w, dcol).reshape(C, self.num, self.in_count).transpose(1, 0, 2)
                b.diff[...] = dx.reshape(b.shape)
