"""Net: a NetParameter built into a DAG of layers over named blobs.

Construction follows Caffe's Net::Init: filter layers by the NetState rules, insert Split
layers where one top feeds several bottoms, create layers and blobs (in-place when a top
reuses its bottom's name), share parameters named alike, and work out which layers and
bottoms need backward. Every learnable blob's data and diff are then views into two flat
buffers laid out in reverse order of readiness during backward (see `param_layout`), so a
distributed reducer can all-reduce contiguous buckets from `after_backward` hooks.
"""
import logging
import os
from collections import OrderedDict

import numpy as np

from . import backend
from .blob import Blob, legacy_shape, shape_fits
from .errors import ConfigError, DataError
from .layer import TEST, TRAIN, create_layer
from .proto import caffe_pb2, read_binary_proto, read_net_param, write_binary
from .proto.upgrade import upgrade_net
from .net_param import filter_net, insert_splits

log = logging.getLogger("dist_caffe.net")


class ParamEntry:
    """Where one learnable blob lives in the flat buffers, and when backward has finished it."""

    def __init__(self, blob, layer_name, index, lr_mult, decay_mult, ready_layer):
        self.blob, self.layer_name, self.index = blob, layer_name, index
        self.lr_mult, self.decay_mult, self.ready_layer = lr_mult, decay_mult, ready_layer
        self.offset = 0

    @property
    def count(self):
        return self.blob.count

    def __repr__(self):
        return (f"ParamEntry({self.layer_name}[{self.index}], offset={self.offset}, "
                f"count={self.count}, ready_after_layer={self.ready_layer})")


class Net:
    """A net built from a prototxt path or NetParameter, in one phase.

    pycaffe forms: Net(prototxt, phase), Net(prototxt, weights, phase), Net(prototxt, phase,
    weights=...); plus level/stages (NetState), dtype (float64 for gradient checks) and
    source (the file name error messages give for a NetParameter).
    """

    def __init__(self, net, *args, weights=None, phase=None, level=0, stages=(),
                 dtype=np.float32, source=None):
        for a in args:
            if isinstance(a, (str, os.PathLike)):
                weights = a
            else:
                phase = a
        is_path = isinstance(net, os.PathLike) or (isinstance(net, str) and "{" not in net)
        self.source = str(net) if is_path else "<NetParameter>" if not isinstance(net, str) \
            else "<string>"
        self.source = source or self.source  # the file a NetParameter came from, for messages
        param = read_net_param(net) if isinstance(net, (str, os.PathLike)) else net
        param, _ = upgrade_net(param)
        state = caffe_pb2.NetState()
        state.CopyFrom(param.state)
        if phase is not None:
            state.phase = phase
        elif not param.state.HasField("phase"):
            state.phase = TEST
        if level:
            state.level = level
        state.stage.extend(s for s in stages if s not in state.stage)
        self.phase, self.dtype = state.phase, np.dtype(dtype)
        self.name = param.name
        where = f"{self.source}: "
        self.param = insert_splits(filter_net(param, state, where))
        self.param.state.CopyFrom(state)
        self.after_backward = []  # hooks fn(layer_index) called after each layer's backward
        self.debug_info = param.debug_info  # log mean |value| of every blob, as Caffe's debug_info
        self._build(where)
        if weights:
            self.copy_from(weights)

    # -- construction --------------------------------------------------------
    def _build(self, where):
        self.layers, self.blobs, self.params = [], OrderedDict(), OrderedDict()
        self.bottom_vecs, self.top_vecs, self.bottom_need_backward = [], [], []
        self.inputs, self.layer_need_backward = [], []
        self.blob_loss_weights = {}
        blob_need_backward, produced_by = {}, {}
        owners, entries = {}, []  # param name -> ParamEntry; entries of owned params
        self._permissive = []  # (sharer blob, owner blob) of PERMISSIVE shares
        for i, lp in enumerate(self.param.layer):
            layer = create_layer(lp, phase=self.phase, dtype=self.dtype, where=where)
            bottom = []
            for name in lp.bottom:
                if name not in self.blobs:
                    raise ConfigError(
                        f"{where}layer '{lp.name}' ({lp.type}): bottom '{name}' is produced by no "
                        "layer above it (check the name, and the include/exclude phase rules of "
                        "the layer that should produce it)")
                bottom.append(self.blobs[name])
            top = []
            for k, name in enumerate(lp.top):
                in_place = k < len(lp.bottom) and lp.bottom[k] == name
                if in_place:
                    top.append(self.blobs[name])
                    continue
                if name in self.blobs:
                    raise ConfigError(
                        f"{where}layer '{lp.name}' ({lp.type}): top '{name}' is already produced by "
                        f"layer '{produced_by[name]}'; rename the top (only in-place layers, whose "
                        "top equals their bottom at the same position, may reuse a name)")
                self.blobs[name] = top_blob = Blob((), self.dtype)
                produced_by[name] = lp.name
                top.append(top_blob)
            while layer.auto_top_blobs and len(top) < (layer.exact_num_top or layer.min_top or 0):
                top.append(Blob((), self.dtype))  # anonymous, as Caffe's AppendTop(NULL)
            if lp.type == "Input":
                self.inputs.extend(lp.top)
            log.info("Setting up %s", lp.name)
            try:
                layer.setup(bottom, top)
            except ConfigError as e:
                raise ConfigError(f"{where}{e}") from None
            except (ValueError, IndexError) as e:
                raise ConfigError(f"{where}layer '{lp.name}' ({lp.type}): {e}") from e
            for name, blob, w in zip(lp.top, top, layer.loss_weights):
                log.info("Top shape: %s (%d)", " ".join(map(str, blob.shape)), blob.count)
                if w:
                    self.blob_loss_weights[name] = w
            self.layers.append(layer)
            self.bottom_vecs.append(bottom)
            self.top_vecs.append(top)

            need = any(blob_need_backward.get(n, False) for n in lp.bottom)
            need_bottom = [blob_need_backward.get(n, False) for n in lp.bottom]
            if lp.propagate_down:
                if len(lp.propagate_down) != len(lp.bottom):
                    raise ConfigError(f"{where}layer '{lp.name}' ({lp.type}): propagate_down has "
                                      f"{len(lp.propagate_down)} values for {len(lp.bottom)} bottoms")
                need_bottom = [a and b for a, b in zip(need_bottom, lp.propagate_down)]
            for j in range(len(layer.blobs)):
                spec = layer.param.param[j] if j < len(layer.param.param) else caffe_pb2.ParamSpec()
                layer.param_propagate_down[j] = spec.lr_mult != 0
                need = need or spec.lr_mult != 0
                self._append_param(i, layer, j, spec, owners, entries, where)
            if layer.blobs:
                self.params[lp.name] = layer.blobs
            for name in lp.top:
                blob_need_backward[name] = need
            self.layer_need_backward.append(need)
            self.bottom_need_backward.append(need_bottom)

        self._prune_backward(blob_need_backward)
        available = []  # Caffe's rule: a blob is an output if no later layer reads it
        for lp in self.param.layer:
            available = [n for n in available if n not in lp.bottom]
            available += [n for n in lp.top if n not in available]
        self.outputs = available
        self.layer_dict = OrderedDict((l.name, l) for l in self.layers)
        self._flatten(entries)

    def _append_param(self, i, layer, j, spec, owners, entries, where):
        lname = layer.name
        if not spec.name or spec.name not in owners:
            entry = ParamEntry(layer.blobs[j], lname, j, spec.lr_mult, spec.decay_mult, i)
            entries.append(entry)
            if spec.name:
                owners[spec.name] = entry
            return
        owner = owners[spec.name]
        mine, theirs = layer.blobs[j], owner.blob
        permissive = spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE
        if (theirs.count != mine.count) if permissive else (theirs.shape != mine.shape):
            raise ConfigError(
                f"{where}layer '{lname}' ({layer.type}): param {j} named '{spec.name}' is shared "
                f"with layer '{owner.layer_name}' but their shapes differ ({mine.shape} vs "
                f"{theirs.shape}); shared params need equal shapes (or share_mode: PERMISSIVE "
                "with equal counts)")
        if spec.HasField("lr_mult") and spec.lr_mult != owner.lr_mult:
            raise ConfigError(f"{where}layer '{lname}': shared param '{spec.name}' has lr_mult "
                              f"{spec.lr_mult}, its owner '{owner.layer_name}' has {owner.lr_mult}")
        if mine.shape == theirs.shape:
            layer.blobs[j] = theirs
        else:  # a different-shaped view of the same memory, pointed there after _flatten
            self._permissive.append((mine, theirs))
        owner.ready_layer = min(owner.ready_layer, i)  # done only when its first user is done

    def _prune_backward(self, blob_need_backward):
        """Caffe's second pass: layers that feed no loss skip backward; force_backward adds."""
        under_loss, skip = set(), set()
        for i in reversed(range(len(self.layers))):
            lp, layer = self.param.layer[i], self.layers[i]
            contributes = any(layer.loss_weights) or any(t in under_loss for t in lp.top)
            skip_down = all(t in skip for t in lp.top)  # no reader wants any top's diff
            if not contributes or skip_down:
                self.layer_need_backward[i] = False
                self.bottom_need_backward[i] = [False] * len(lp.bottom)
            for j, name in enumerate(lp.bottom):
                if contributes:
                    under_loss.add(name)
                if not self.bottom_need_backward[i][j]:
                    skip.add(name)
        if self.param.force_backward:
            for i, layer in enumerate(self.layers):
                if not layer.has_backward:
                    continue  # Caffe would abort; we leave such layers (Accuracy, ArgMax) out
                self.layer_need_backward[i] = True
                self.bottom_need_backward[i] = [
                    need or layer.allow_force_backward(j)
                    for j, need in enumerate(self.bottom_need_backward[i])]
                layer.param_propagate_down = [True] * len(layer.blobs)
        for i, layer in enumerate(self.layers):
            if any(self.bottom_need_backward[i]) and not layer.has_backward:
                raise ConfigError(f"{self.source}: layer '{layer.name}' ({layer.type}) has no "
                                  "backward but a loss depends on its bottom; use its output only "
                                  "for reporting, or set propagate_down: false on its bottoms")

    def _flatten(self, entries):
        """Back every learnable blob by views into one flat data and one flat diff buffer.

        Order: learnable params (lr_mult != 0) by the layer after whose backward they are final,
        last layer first (the order backward produces them, as DDP's buckets), then frozen ones.
        """
        entries.sort(key=lambda e: (e.lr_mult == 0, -e.ready_layer))
        total = 0
        for e in entries:
            e.offset, total = total, total + e.count
        xp = backend.xp_for_mode()
        self.param_data = xp.zeros(total, self.dtype)
        self.param_diff = xp.zeros(total, self.dtype)
        for e in entries:
            view = slice(e.offset, e.offset + e.count)
            self.param_data[view] = e.blob.data.reshape(-1)
            e.blob.set_data_storage(self.param_data[view])
            e.blob.set_diff_storage(self.param_diff[view])
        self.param_layout = entries
        self.learnable_count = sum(e.count for e in entries if e.lr_mult != 0)
        for mine, theirs in self._permissive:
            mine.share_data(theirs)
            mine.share_diff(theirs)

    # -- passes ----------------------------------------------------------------
    def _index(self, name, default):
        if name is None:
            return default
        if name not in self.layer_dict:
            raise ConfigError(f"{self.source}: no layer named '{name}' (layers: "
                              f"{', '.join(self.layer_dict)})")
        return list(self.layer_dict).index(name)

    def forward_from_to(self, start=0, end=None):
        """Run layers start..end inclusive; returns the summed weighted loss."""
        end = len(self.layers) - 1 if end is None else end
        loss = 0.0
        for i in range(start, end + 1):
            layer, bottom, top = self.layers[i], self.bottom_vecs[i], self.top_vecs[i]
            layer.reshape(bottom, top)
            loss += layer.run_forward(bottom, top)
            if self.debug_info:
                self._log_blobs("Forward", i, "top", self.param.layer[i].top, top, "data")
        return loss

    def _log_blobs(self, direction, i, kind, names, blobs, field):
        """Caffe's debug_info lines: the mean absolute value of each blob (and param)."""
        layer = self.layers[i]
        for name, blob in zip(names, blobs):
            value = float(abs(getattr(blob, field)).mean()) if blob.count else 0.0
            log.info("    [%s] Layer %s, %s blob %s %s: %g", direction, layer.name, kind, name,
                     field, value)
        for j, blob in enumerate(layer.blobs):
            value = float(abs(getattr(blob, field)).mean()) if blob.count else 0.0
            log.info("    [%s] Layer %s, param blob %d %s: %g", direction, layer.name, j, field,
                     value)

    def backward_from_to(self, start=None, end=0):
        start = len(self.layers) - 1 if start is None else start
        for i in range(start, end - 1, -1):
            if self.layer_need_backward[i]:
                self.layers[i].run_backward(self.top_vecs[i], self.bottom_need_backward[i],
                                            self.bottom_vecs[i])
                if self.debug_info:
                    self._log_blobs("Backward", i, "bottom", self.param.layer[i].bottom,
                                    self.bottom_vecs[i], "diff")
            for hook in self.after_backward:
                hook(i)

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """pycaffe's forward: set inputs from kwargs, run, return {output: data}."""
        for name, value in kwargs.items():
            if name not in self.blobs:
                raise ConfigError(f"{self.source}: forward() got unknown blob '{name}' "
                                  f"(inputs: {', '.join(self.inputs)})")
            if tuple(np.shape(value)) != self.blobs[name].shape:
                self.blobs[name].reshape(np.shape(value))
            self.blobs[name].data = value
        self.loss = self.forward_from_to(self._index(start, 0), self._index(end, len(self.layers) - 1))
        names = list(self.outputs if end is None else self.param.layer[self._index(end, 0)].top)
        names += [b for b in (blobs or []) if b not in names]
        return {n: self.blobs[n].data for n in names}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """pycaffe's backward: set top diffs from kwargs, run, return {input: diff}."""
        for name, value in kwargs.items():
            self.blobs[name].diff = value
        self.backward_from_to(self._index(start, len(self.layers) - 1), self._index(end, 0))
        names = list(self.inputs) + [d for d in (diffs or []) if d not in self.inputs]
        return {n: self.blobs[n].diff for n in names}

    def forward_backward(self):
        """One training pass: forward, then backward; returns the loss."""
        loss = self.forward_from_to()
        self.backward_from_to()
        return loss

    def reshape(self):
        for layer, bottom, top in zip(self.layers, self.bottom_vecs, self.top_vecs):
            layer.reshape(bottom, top)

    def set_input_arrays(self, data, labels):
        """pycaffe's: hand arrays to the net's first MemoryData layer."""
        for layer in self.layers:
            if layer.type == "MemoryData":
                return layer.set_input_arrays(data, labels)
        raise ConfigError(f"{self.source}: set_input_arrays needs a MemoryData layer; this net has "
                          "none (its inputs are fed through net.blobs[...].data instead)")

    def clear_param_diffs(self):
        self.param_diff[...] = 0

    @property
    def learnable_params(self):
        return [e.blob for e in self.param_layout]

    # -- weights ---------------------------------------------------------------
    def copy_from(self, weights):
        """Copy blobs from .caffemodel file(s) (comma-separated) or a NetParameter, by layer name."""
        if isinstance(weights, (str, os.PathLike)):
            for path in str(weights).split(","):
                self._copy_from_param(self._read_weights(path), path)
        else:
            self._copy_from_param(weights, "<NetParameter>")

    @staticmethod
    def _read_weights(path):
        if path.endswith((".h5", ".hdf5")):
            from .hdf5 import read_net_hdf5
            return read_net_hdf5(path)
        try:
            param = read_binary_proto(path, caffe_pb2.NetParameter)
        except DataError as e:  # a weights file is part of the job's configuration
            raise ConfigError(f"{e}; re-copy the file or point -weights at a complete .caffemodel") \
                from None
        return upgrade_net(param)[0]

    def _copy_from_param(self, source, where):
        for src in source.layer:
            layer = self.layer_dict.get(src.name)
            if layer is None or not src.blobs:
                continue
            if len(src.blobs) != len(layer.blobs):
                raise ConfigError(
                    f"{where}: layer '{src.name}' has {len(src.blobs)} blobs in the file but "
                    f"{len(layer.blobs)} in the net ({layer.type}); to learn this layer's "
                    "parameters from scratch rather than copying them, rename the layer")
            for j, (proto, blob) in enumerate(zip(src.blobs, layer.blobs)):
                shape = legacy_shape(proto)
                if not shape_fits(blob.shape, shape):
                    raise ConfigError(
                        f"{where}: cannot copy param {j} of layer '{src.name}' ({layer.type}): "
                        f"shape mismatch; the file has {shape} ({int(np.prod(shape))}), the net "
                        f"has {blob.shape} ({blob.count}). To learn this layer's parameters from "
                        "scratch rather than copying them from a saved net, rename the layer")
                try:
                    blob.from_proto(proto, reshape=False)
                except ValueError as e:
                    raise ConfigError(f"{where}: layer '{src.name}' param {j}: {e}") from None

    def share_with(self, other):
        """Share the data of every same-named layer's blobs with `other` (test nets do this)."""
        for layer in self.layers:
            src = other.layer_dict.get(layer.name)
            if src is None:
                continue
            for j, (mine, theirs) in enumerate(zip(layer.blobs, src.blobs)):
                if mine.shape != theirs.shape:
                    raise ConfigError(f"cannot share param {j} of layer '{layer.name}': shapes "
                                      f"{mine.shape} and {theirs.shape} differ")
                mine.share_data(theirs)

    def to_proto(self, write_diff=False):
        """The NetParameter of this net (splits left out) with every layer's blobs."""
        out = caffe_pb2.NetParameter()
        out.name = self.name
        for lp, layer in zip(self.param.layer, self.layers):
            if lp.type == "Split" and lp.name.endswith("_split"):
                continue
            new = out.layer.add()
            new.CopyFrom(lp)
            del new.blobs[:]
            for blob in layer.blobs:
                blob.to_proto(new.blobs.add(), write_diff=write_diff)
        return out

    def save(self, path, write_diff=False):
        """Write a .caffemodel (binary NetParameter), atomically."""
        write_binary(self.to_proto(write_diff), path)

    # -- pycaffe conveniences -------------------------------------------------
    @property
    def _layer_names(self):
        return list(self.layer_dict)

    @property
    def top_names(self):
        return OrderedDict((lp.name, list(lp.top)) for lp in self.param.layer)

    @property
    def bottom_names(self):
        return OrderedDict((lp.name, list(lp.bottom)) for lp in self.param.layer)

    def __repr__(self):
        return f"<Net '{self.name}' phase={'TRAIN' if self.phase == TRAIN else 'TEST'} " \
               f"layers={len(self.layers)}>"
