"""Build nets in Python: pycaffe's NetSpec, layer factory and parameter enums.

    from dist_caffe import layers as L, params as P
    n = caffe.NetSpec()
    n.data, n.label = L.Input(shape=[dict(dim=[64, 1, 28, 28]), dict(dim=[64])], ntop=2)
    n.conv1 = L.Convolution(n.data, num_output=20, kernel_size=5,
                            weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.loss = L.SoftmaxWithLoss(n.pool1, n.label)
    text = str(n.to_proto())

`L.<Type>(*bottoms, **fields)` makes a layer of that type: keyword arguments ending in
`param` (param=[...], convolution_param=dict(...)) go to the LayerParameter; the others go
to the type's own <type>_param message when it has such a field, else to the LayerParameter
(name, loss_weight, include, propagate_down, ...). `ntop=k` gives k tops (0: none),
`in_place=True` reuses the bottom as top. Lists fill repeated fields, dicts fill messages,
strings name enum values. Layers and tops take the names they are assigned to on the
NetSpec; unassigned ones are named <Type><k>.
"""
from collections import Counter, OrderedDict

from google.protobuf.descriptor import FieldDescriptor

from .errors import ConfigError
from .proto import caffe_pb2


def param_name_dict():
    """{type name: <type>_param prefix}, from LayerParameter's *_param fields and their message
    names (ConvolutionParameter -> Convolution: convolution), as pycaffe derives it."""
    out = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            type_name = field.message_type.name
            if type_name.endswith("Parameter"):
                out[type_name[:-len("Parameter")]] = field.name[:-len("_param")]
    return out


_PARAM_NAMES = param_name_dict()


def assign_proto(proto, name, value):
    """proto.<name> = value, recursing into dicts and lists (see the module docstring)."""
    field = proto.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise AttributeError(f"{proto.DESCRIPTOR.full_name} has no field '{name}'")
    repeated = _is_repeated(field)
    if repeated and not isinstance(value, (list, tuple)):
        value = [value]
    if isinstance(value, (list, tuple)):
        if not repeated:
            raise ConfigError(f"{proto.DESCRIPTOR.full_name}.{name} holds one value, got a list "
                              f"{value!r}")
        container = getattr(proto, name)
        for item in value:
            if field.message_type is not None:
                message = container.add()
                if isinstance(item, dict):
                    for k, v in item.items():
                        assign_proto(message, k, v)
                else:
                    message.CopyFrom(item)
            else:
                container.append(_scalar(field, item))
    elif isinstance(value, dict):
        if field.message_type is None:
            raise ConfigError(f"{proto.DESCRIPTOR.full_name}.{name} is not a message; got "
                              f"{value!r}")
        for k, v in value.items():
            assign_proto(getattr(proto, name), k, v)
    elif field.message_type is not None:
        getattr(proto, name).CopyFrom(value)
    else:
        setattr(proto, name, _scalar(field, value))


def _is_repeated(field):
    # protobuf >= 5 has is_repeated (and deprecates label); older releases only label.
    if hasattr(type(field), "is_repeated"):
        return field.is_repeated
    return field.label == FieldDescriptor.LABEL_REPEATED


def _scalar(field, value):
    """An enum given by name becomes its number; other values pass through."""
    if field.enum_type is not None and isinstance(value, str):
        enum_value = field.enum_type.values_by_name.get(value)
        if enum_value is None:
            raise ConfigError(f"{field.full_name}: '{value}' is not one of "
                              f"{', '.join(field.enum_type.values_by_name)}")
        return enum_value.number
    return value


class Top:
    """One output of a Function (a layer in the making); pass it as another layer's bottom."""

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def to_proto(self):
        """A NetParameter holding this top and every layer it depends on."""
        return to_proto(self)

    def _update(self, params):
        self.fn.params.update(params)

    def _to_proto(self, layers, names, autonames):
        return self.fn._to_proto(layers, names, autonames)


class Function:
    """A layer of a given type with its bottoms (Tops) and fields, before naming."""

    def __init__(self, type_name, inputs, params):
        self.type_name = type_name
        for i, inp in enumerate(inputs):
            if not isinstance(inp, Top):
                raise ConfigError(f"L.{type_name}: bottom {i} is a {type(inp).__name__}, expected "
                                  "a top made by another L.<Type>(...) call (or a NetSpec entry)")
        self.inputs = inputs
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        if self.in_place and len(inputs) != self.ntop:
            raise ConfigError(f"L.{type_name}: in_place needs one top per bottom "
                              f"({len(inputs)} bottoms, ntop={self.ntop})")
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _get_name(self, names, autonames):
        if self not in names and self.ntop > 0:
            names[self] = self._get_top_name(self.tops[0], names, autonames)
        elif self not in names:
            autonames[self.type_name] += 1
            names[self] = self.type_name + str(autonames[self.type_name])
        return names[self]

    @staticmethod
    def _get_top_name(top, names, autonames):
        if top not in names:
            autonames[top.fn.type_name] += 1
            names[top] = top.fn.type_name + str(autonames[top.fn.type_name])
        return names[top]

    def _to_proto(self, layers, names, autonames):
        if self in layers:
            return
        bottom_names = []
        for inp in self.inputs:
            inp._to_proto(layers, names, autonames)
            bottom_names.append(layers[inp.fn].top[inp.n])
        layer = caffe_pb2.LayerParameter()
        layer.type = self.type_name
        layer.bottom.extend(bottom_names)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            for top in self.tops:
                layer.top.append(self._get_top_name(top, names, autonames))
        layer.name = self._get_name(names, autonames)
        for key, value in self.params.items():
            self._assign(layer, key, value)
        layers[self] = layer

    def _assign(self, layer, key, value):
        # Fields ending in 'param' (param, convolution_param, ...) belong to the layer itself.
        if key.endswith("param"):
            return assign_proto(layer, key, value)
        prefix = _PARAM_NAMES.get(self.type_name)
        if prefix is not None:
            message = getattr(layer, prefix + "_param")
            if key in message.DESCRIPTOR.fields_by_name:
                return assign_proto(message, key, value)
        if key not in layer.DESCRIPTOR.fields_by_name:
            where = f"{prefix}_param nor " if prefix else ""
            raise ConfigError(f"L.{self.type_name}: '{key}' is a field of neither {where}"
                              "LayerParameter; check the spelling (fields use Caffe's names)")
        assign_proto(layer, key, value)


class NetSpec:
    """Named tops of a net under construction: `n.name = L.Type(...)`; `to_proto()` builds the
    NetParameter, naming each layer after its (first) top."""

    def __init__(self):
        super().__setattr__("tops", OrderedDict())

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(f"NetSpec has no top '{name}'") from None

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __getitem__(self, item):
        return self.__getattr__(item)

    def __delitem__(self, name):
        del self.tops[name]

    def keys(self):
        return list(self.tops.keys())

    def vals(self):
        return list(self.tops.values())

    def to_proto(self):
        names = {v: k for k, v in self.tops.items()}
        autonames = Counter()
        layers = OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


def to_proto(*tops):
    """A NetParameter with the given tops and every layer they depend on."""
    layers = OrderedDict()
    autonames = Counter()
    for top in tops:
        top.fn._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class Layers:
    """`L.Convolution(bottom, ...)`: a factory for every layer type name (CamelCase)."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def layer_fn(*args, **kwargs):
            fn = Function(name, args, kwargs)
            if fn.ntop == 0:
                return fn
            if fn.ntop == 1:
                return fn.tops[0]
            return fn.tops

        layer_fn.__name__ = name
        return layer_fn


class Parameters:
    """`P.Pooling.MAX`: enum values of the <Type>Parameter messages (PoolingParameter.MAX)."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        message = getattr(caffe_pb2, name + "Parameter", None)
        if message is None:
            raise AttributeError(f"caffe_pb2 has no {name}Parameter (known: "
                                 f"{', '.join(sorted(_PARAM_NAMES))})")

        class Param:
            def __getattr__(self, param_name):
                return getattr(message, param_name)

        return Param()


layers = Layers()
params = Parameters()

__all__ = ["NetSpec", "Top", "Function", "layers", "params", "to_proto", "assign_proto",
           "param_name_dict"]
