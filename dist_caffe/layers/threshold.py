"""Threshold: a step function (forward only, as in Caffe)."""
from .. import kernels
from ..layer import NeuronLayer, register_layer


@register_layer
class ThresholdLayer(NeuronLayer):
    """y = 1 if x > threshold else 0.  Reads threshold_param.threshold (default 0).

    Caffe gives it no backward; a net that needs its gradient is a ConfigError.
    """

    type = "Threshold"
    has_backward = False

    def forward(self, bottom, top):
        x = bottom[0].data
        top[0].data[...] = x > self.param.threshold_param.threshold

    def forward_gpu(self, bottom, top):
        x = bottom[0].data
        kernels.call("neurons.cu", "neurons_threshold_forward", x.size, x, top[0].data,
                     self.param.threshold_param.threshold)
