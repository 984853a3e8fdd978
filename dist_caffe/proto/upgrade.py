"""Upgrade legacy Caffe nets and solvers to the current format.

Mirrors Caffe's upgrade_proto.cpp, step for step and in the same order:
V0 layers (`layers { layer { type: "conv" } }`) -> V1 layers, data transformation
fields -> transform_param, V1 layers (`layers { type: CONVOLUTION }`) -> `layer`,
net `input` fields -> one Input layer, BatchNorm statistics frozen, and
SolverParameter.solver_type (enum) -> type (string). Blobs travel unchanged,
legacy 4-D blob shapes included (fitting them to a layer is the Blob's job).
"""

import logging

from ..errors import ConfigError
from . import caffe_pb2

log = logging.getLogger(__name__)

V1LayerType = caffe_pb2.V1LayerParameter.LayerType

# V1 enum name -> current type string.
V1_LAYER_TYPES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax",
    "BNLL": "BNLL", "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution", "DATA": "Data",
    "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct", "LRN": "LRN", "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

# V0 type string -> V1 enum name.
V0_LAYER_TYPES = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX",
    "softmax_loss": "SOFTMAX_LOSS", "split": "SPLIT", "tanh": "TANH",
    "window_data": "WINDOW_DATA",
}

# V0 field -> {V0 type (or "*" for any): destination in V1LayerParameter}.
# A trailing "[]" appends to a repeated field.
V0_FIELDS = {
    "num_output": {"conv": "convolution_param.num_output",
                   "innerproduct": "inner_product_param.num_output"},
    "biasterm": {"conv": "convolution_param.bias_term",
                 "innerproduct": "inner_product_param.bias_term"},
    "weight_filler": {"conv": "convolution_param.weight_filler",
                      "innerproduct": "inner_product_param.weight_filler"},
    "bias_filler": {"conv": "convolution_param.bias_filler",
                    "innerproduct": "inner_product_param.bias_filler"},
    "pad": {"conv": "convolution_param.pad[]", "pool": "pooling_param.pad"},
    "kernelsize": {"conv": "convolution_param.kernel_size[]", "pool": "pooling_param.kernel_size"},
    "group": {"conv": "convolution_param.group"},
    "stride": {"conv": "convolution_param.stride[]", "pool": "pooling_param.stride"},
    "pool": {"pool": "pooling_param.pool"},
    "dropout_ratio": {"dropout": "dropout_param.dropout_ratio"},
    "local_size": {"lrn": "lrn_param.local_size"},
    "alpha": {"lrn": "lrn_param.alpha"},
    "beta": {"lrn": "lrn_param.beta"},
    "k": {"lrn": "lrn_param.k"},
    "source": {"data": "data_param.source", "hdf5_data": "hdf5_data_param.source",
               "images": "image_data_param.source", "window_data": "window_data_param.source",
               "infogain_loss": "infogain_loss_param.source"},
    "scale": {"*": "transform_param.scale"},
    "meanfile": {"*": "transform_param.mean_file"},
    "batchsize": {"data": "data_param.batch_size", "hdf5_data": "hdf5_data_param.batch_size",
                  "images": "image_data_param.batch_size",
                  "window_data": "window_data_param.batch_size"},
    "cropsize": {"*": "transform_param.crop_size"},
    "mirror": {"*": "transform_param.mirror"},
    "rand_skip": {"data": "data_param.rand_skip", "images": "image_data_param.rand_skip"},
    "shuffle_images": {"images": "image_data_param.shuffle"},
    "new_height": {"images": "image_data_param.new_height"},
    "new_width": {"images": "image_data_param.new_width"},
    "concat_dim": {"concat": "concat_param.concat_dim"},
    "det_fg_threshold": {"window_data": "window_data_param.fg_threshold"},
    "det_bg_threshold": {"window_data": "window_data_param.bg_threshold"},
    "det_fg_fraction": {"window_data": "window_data_param.fg_fraction"},
    "det_context_pad": {"window_data": "window_data_param.context_pad"},
    "det_crop_mode": {"window_data": "window_data_param.crop_mode"},
    "hdf5_output_param": {"hdf5_output": "hdf5_output_param"},
}

# Legacy data-layer fields that belong in transform_param (V1 nets only, as in Caffe).
DATA_LAYER_PARAMS = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                     "WINDOW_DATA": "window_data_param"}
TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")

# Every per-type message of V1LayerParameter has the same name in LayerParameter.
V1_PARAM_FIELDS = tuple(f.name for f in caffe_pb2.V1LayerParameter.DESCRIPTOR.fields
                        if f.name.endswith("_param"))

SOLVER_TYPES = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad",
                "RMSPROP": "RMSProp", "ADADELTA": "AdaDelta", "ADAM": "Adam"}


def legacy_formats(msg):
    """Names of the legacy constructs in a NetParameter or SolverParameter ([] if current)."""
    if isinstance(msg, caffe_pb2.SolverParameter):
        found = ["solver_type enum"] if msg.HasField("solver_type") else []
        nets = [msg.net_param, msg.train_net_param, *msg.test_net_param]
        return found + sorted({f for n in nets for f in legacy_formats(n)})
    found = []
    if any(v1.HasField("layer") for v1 in msg.layers):
        found.append("V0 layers")
    if _needs_data_upgrade(msg):
        found.append("data transformation fields outside transform_param")
    if len(msg.layers):
        found.append("V1 layers")
    if len(msg.input):
        found.append("input fields")
    if any(s.lr_mult or s.decay_mult for layer in _old_batch_norms(msg) for s in layer.param):
        found.append("BatchNorm statistics declared as learnable params")
    return found


def needs_upgrade(msg):
    """True when `msg` (NetParameter or SolverParameter) uses any legacy format."""
    return bool(legacy_formats(msg))


def upgrade_net(net_param, source="<net>"):
    """Return (upgraded copy of net_param, changed). `source` names the file in errors."""
    net = caffe_pb2.NetParameter()
    net.CopyFrom(net_param)
    if any(v1.HasField("layer") for v1 in net.layers):
        net = _upgrade_v0_net(net, source)
    if _needs_data_upgrade(net):
        _upgrade_data_transformation(net)
    if len(net.layers):
        net = _upgrade_v1_net(net, source)
    if len(net.input):
        _upgrade_input(net, source)
    for layer in _old_batch_norms(net):
        for spec in layer.param:    # statistics are not learned: freeze them, keep names
            spec.lr_mult, spec.decay_mult = 0.0, 0.0
    return net, net != net_param


def upgrade_solver(solver_param, source="<solver>"):
    """Return (upgraded copy of solver_param, changed); inline nets are upgraded too."""
    solver = caffe_pb2.SolverParameter()
    solver.CopyFrom(solver_param)
    if solver.HasField("solver_type"):
        if solver.HasField("type"):
            raise ConfigError(f"{source}: both solver_type (old enum) and type (string) are set; "
                              f"delete solver_type and keep type: \"{solver.type}\"")
        enum_name = caffe_pb2.SolverParameter.SolverType.Name(solver.solver_type)
        solver.type = SOLVER_TYPES[enum_name]
        solver.ClearField("solver_type")
    for net in [solver.net_param, solver.train_net_param, *solver.test_net_param]:
        if needs_upgrade(net):
            net.CopyFrom(upgrade_net(net, source)[0])
    return solver, solver != solver_param


# ---------------------------------------------------------------- V0 -> V1

def _upgrade_v0_net(net, source):
    """Fold padding layers into their consumers, then convert every V0 layer to V1."""
    padded = _fold_padding_layers(net, source)
    out = caffe_pb2.NetParameter()    # like Caffe, keep only name, inputs and force_backward
    if padded.HasField("name"):
        out.name = padded.name
    out.input.extend(padded.input)
    out.input_dim.extend(padded.input_dim)
    if padded.HasField("force_backward"):
        out.force_backward = padded.force_backward
    for conn in padded.layers:
        out.layers.add().CopyFrom(_v0_layer_to_v1(conn, source))
    return out


def _fold_padding_layers(net, source):
    """Drop V0 "padding" layers, moving their pad onto the conv/pool layer that reads them."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layers[:]
    last_writer = {name: -1 for name in net.input}    # blob -> index of the layer writing it
    for i, conn in enumerate(net.layers):
        v0 = conn.layer
        if v0.type != "padding":
            out.layers.add().CopyFrom(conn)
        for j, blob in enumerate(conn.bottom):
            if blob not in last_writer:
                raise ConfigError(f"{source}: layer '{v0.name}' ({v0.type}) reads blob '{blob}', "
                                  f"which no earlier layer or net input produces")
            k = last_writer[blob]
            if k < 0 or net.layers[k].layer.type != "padding":
                continue
            pad = net.layers[k]
            if v0.type not in ("conv", "pool") or len(conn.bottom) != 1:
                raise ConfigError(f"{source}: padding layer '{pad.layer.name}' feeds layer "
                                  f"'{v0.name}' ({v0.type}); it may only feed a single-input "
                                  f"conv or pool layer")
            if len(pad.bottom) != 1 or len(pad.top) != 1:
                raise ConfigError(f"{source}: padding layer '{pad.layer.name}' must have exactly "
                                  f"one bottom and one top")
            out.layers[-1].layer.pad = pad.layer.pad
            out.layers[-1].bottom[j] = pad.bottom[0]
        for blob in conn.top:
            last_writer[blob] = i
    return out


def _v0_layer_to_v1(conn, source):
    """One V1LayerParameter from a V1 shell holding a V0 layer."""
    v1 = caffe_pb2.V1LayerParameter()
    v1.bottom.extend(conn.bottom)
    v1.top.extend(conn.top)
    v0 = conn.layer
    if v0.HasField("name"):
        v1.name = v0.name
    if v0.HasField("type"):
        if v0.type not in V0_LAYER_TYPES:
            raise ConfigError(f"{source}: layer '{v0.name}' has unknown V0 type '{v0.type}' "
                              f"(known: {', '.join(sorted(V0_LAYER_TYPES))})")
        v1.type = V1LayerType.Value(V0_LAYER_TYPES[v0.type])
    v1.blobs.extend(v0.blobs)
    v1.blobs_lr.extend(v0.blobs_lr)
    v1.weight_decay.extend(v0.weight_decay)
    for field, _ in v0.ListFields():
        if field.name in ("name", "type", "blobs", "blobs_lr", "weight_decay"):
            continue
        targets = V0_FIELDS.get(field.name, {})
        dest = targets.get(v0.type, targets.get("*"))
        if dest is None:    # Caffe logs and carries on
            log.warning("%s: layer '%s': V0 field '%s' has no meaning for type '%s'; dropped",
                        source, v0.name, field.name, v0.type)
            continue
        _assign(v1, dest, getattr(v0, field.name))
    return v1


def _assign(msg, path, value):
    """Set msg.<path> = value; "a.b[]" appends, message values are copied."""
    *parents, leaf = path.split(".")
    for name in parents:
        msg = getattr(msg, name)
    if leaf.endswith("[]"):
        getattr(msg, leaf[:-2]).append(value)
    elif hasattr(value, "CopyFrom"):
        getattr(msg, leaf).CopyFrom(value)
    else:
        setattr(msg, leaf, value)


# ---------------------------------------------- data transformation fields

def _needs_data_upgrade(net):
    return any(_legacy_transform_fields(v1) for v1 in net.layers)


def _legacy_transform_fields(v1):
    enum_name = V1LayerType.Name(v1.type)
    if enum_name not in DATA_LAYER_PARAMS:
        return []
    param = getattr(v1, DATA_LAYER_PARAMS[enum_name])
    return [(param, f) for f in TRANSFORM_FIELDS if param.HasField(f)]


def _upgrade_data_transformation(net):
    for v1 in net.layers:
        for param, field in _legacy_transform_fields(v1):
            setattr(v1.transform_param, field, getattr(param, field))
            param.ClearField(field)


# ---------------------------------------------------------------- V1 -> V2

def _upgrade_v1_net(net, source):
    if len(net.layer):
        raise ConfigError(f"{source}: the net has both 'layer' and legacy 'layers' entries; write "
                          f"every layer in the current form layer {{ type: \"Convolution\" ... }}")
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layers[:]
    for v1 in net.layers:
        out.layer.add().CopyFrom(_v1_layer_to_layer(v1, source))
    return out


def _v1_layer_to_layer(v1, source):
    layer = caffe_pb2.LayerParameter()
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    if v1.HasField("name"):
        layer.name = v1.name
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    if v1.HasField("type"):
        layer.type = V1_LAYER_TYPES[V1LayerType.Name(v1.type)]
    layer.blobs.extend(v1.blobs)

    def spec(i):    # layer.param[i], growing the list as Caffe does
        while len(layer.param) <= i:
            layer.param.add()
        return layer.param[i]

    for i, name in enumerate(v1.param):
        spec(i).name = name
    for i, mode in enumerate(v1.blob_share_mode):    # same numbering in both enums
        spec(i).share_mode = mode
    for i, lr in enumerate(v1.blobs_lr):
        spec(i).lr_mult = lr
    for i, decay in enumerate(v1.weight_decay):
        spec(i).decay_mult = decay
    layer.loss_weight.extend(v1.loss_weight)
    for field in V1_PARAM_FIELDS:
        if v1.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1, field))
    if v1.HasField("layer"):
        log.warning("%s: layer '%s' holds both V1 and V0 settings; the V0 part is ignored",
                    source, v1.name)
    return layer


# ----------------------------------------------------- inputs and BatchNorm

def _upgrade_input(net, source):
    """Turn net-level input/input_shape/input_dim into an Input layer placed first."""
    n = len(net.input)
    if len(net.input_shape) or len(net.input_dim):
        if len(net.input_shape):
            if len(net.input_shape) != n:
                raise ConfigError(f"{source}: {n} input(s) but {len(net.input_shape)} "
                                  f"input_shape(s); give one input_shape per input")
            shapes = [list(s.dim) for s in net.input_shape]
        else:
            if len(net.input_dim) != 4 * n:
                raise ConfigError(f"{source}: {n} input(s) need {4 * n} input_dim values (num, "
                                  f"channels, height, width each), found {len(net.input_dim)}")
            shapes = [net.input_dim[4 * i:4 * i + 4] for i in range(n)]
        layer = caffe_pb2.LayerParameter(name="input", type="Input", top=list(net.input))
        for dims in shapes:
            layer.input_param.shape.add().dim.extend(dims)
        layers = [layer, *net.layer]
        del net.layer[:]
        net.layer.extend(layers)
    # An input without shape (old caffemodels) is simply dropped, as in Caffe.
    for field in ("input", "input_shape", "input_dim"):
        net.ClearField(field)


def _old_batch_norms(net):
    """BatchNorm layers declaring three param specs: the old way to keep statistics unlearned."""
    return [layer for layer in net.layer if layer.type == "BatchNorm" and len(layer.param) == 3]
