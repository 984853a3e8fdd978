"""NetParameter rewrites done before a net is built: Caffe's NetState include/exclude filter
and InsertSplits (a top read by several bottoms goes through an implicit Split layer)."""
from .errors import ConfigError
from .proto import caffe_pb2


def state_meets_rule(state, rule):
    """Caffe's StateMeetsRule: phase, level range, required and forbidden stages."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def filter_net(net_param, state, where=""):
    """The layers of net_param that the NetState includes (include rules, else exclude rules)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    del out.layer[:]
    for layer in net_param.layer:
        if layer.include and layer.exclude:
            raise ConfigError(f"{where}layer '{layer.name}' ({layer.type}): give include or exclude "
                              "rules, not both")
        if layer.include:
            keep = any(state_meets_rule(state, r) for r in layer.include)
        else:
            keep = not any(state_meets_rule(state, r) for r in layer.exclude)
        if keep:
            out.layer.add().CopyFrom(layer)
    return out


def _loss_weight(layer, top_index):
    if layer.loss_weight:
        return layer.loss_weight[top_index] if top_index < len(layer.loss_weight) else 0.0
    return 1.0 if top_index == 0 and layer.type.endswith("Loss") else 0.0


def insert_splits(net_param):
    """Caffe's InsertSplits: a top read by several bottoms goes through a Split layer whose
    tops `<blob>_<layer>_<k>_split_<i>` feed one reader each (their diffs are summed back)."""
    producer, uses, reader_of = {}, {}, {}
    for i, layer in enumerate(net_param.layer):
        for j, name in enumerate(layer.bottom):
            if name in producer:
                src = producer[name]
                uses[src] = uses.get(src, 0) + 1
                reader_of[(i, j)] = src
        for k, name in enumerate(layer.top):
            producer[name] = (i, k)
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    del out.layer[:]
    next_use = {}
    for i, layer in enumerate(net_param.layer):
        new = out.layer.add()
        new.CopyFrom(layer)
        for j, name in enumerate(layer.bottom):
            src = reader_of.get((i, j))
            if src is not None and src in next_use:
                pname = net_param.layer[src[0]].name
                new.bottom[j] = f"{name}_{pname}_{src[1]}_split_{next_use[src]}"
                next_use[src] += 1
        for k, name in enumerate(layer.top):
            count, weight = uses.get((i, k), 0), _loss_weight(layer, k)
            if count > 1 or (count and weight):
                split = out.layer.add()
                split.name, split.type = f"{name}_{layer.name}_{k}_split", "Split"
                split.bottom.append(name)
                n = count + (1 if weight else 0)
                split.top.extend(f"{name}_{layer.name}_{k}_split_{s}" for s in range(n))
                if weight:  # the loss moves to the split's extra top
                    split.loss_weight.extend([0.0] * count + [weight])
                    new.loss_weight[:] = [0.0 if t == k else _loss_weight(layer, t)
                                          for t in range(len(layer.top))]
                next_use[(i, k)] = 0
    return out
