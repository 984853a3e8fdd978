"""ImageData: batches of images read from files named in a list file, with their labels."""
from ..data.datum import read_image
from ..data.options import options
from ..data.sharding import ShardStream
from ..errors import DataError
from ..layer import register_layer
from ..parallel import world
from .data import PrefetchingDataLayer


def read_list_file(path):
    """[(image path, label)] from lines `path label` (split at the last space, as Caffe)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise DataError(f"image list '{path}': cannot read it ({e.strerror}); "
                        "image_data_param.source must name a text file of 'path label' lines") \
            from None
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, _, label = line.rstrip().rpartition(" ")
        try:
            lines.append((name, int(label)))
        except ValueError:
            raise DataError(f"image list '{path}' line {number}: expected 'path label' with an "
                            f"integer label, found {line!r}") from None
    if not lines:
        raise DataError(f"image list '{path}' is empty; list one 'path label' per line")
    return lines


class FileDecoder:
    """(index, (path, label)) -> (CHW BGR image, label); picklable for decode workers."""

    def __init__(self, root, color, new_height, new_width):
        self.root, self.color, self.size = root, color, (new_height, new_width)

    def __call__(self, key, payload):
        path, label = payload
        return read_image(self.root + path, self.color, *self.size), label


class ListSource:
    """This rank's stream of (line index, (path, label)) items from a list file."""

    def __init__(self, source, lines, stream):
        self.source, self.lines, self.stream = source, lines, stream

    def next_items(self, k, advance=True):
        return [(i, self.lines[i]) for i in self.stream.take(k, advance)]

    def where(self, key):
        return f"image list '{self.source}' line {key + 1} ('{self.lines[key][0]}')"


@register_layer
class ImageDataLayer(PrefetchingDataLayer):
    """Images named in a list file, decoded with Pillow, rank r of W reading its own shard.

    Reads image_data_param: source (lines `path label`), root_folder (prefixed to every
    path, as a plain string), batch_size, shuffle (per epoch, the same order on every rank,
    seeded by DIST_CAFFE_SHUFFLE_SEED), rand_skip, new_height/new_width (bilinear resize,
    both or neither), is_color; data_param.prefetch; and transform_param (DataTransformer).
    """

    type = "ImageData"

    def layer_setup(self, bottom, top):
        p = self.param.image_data_param
        if not p.source:
            raise self.error("image_data_param.source", "is empty; name a list file")
        if bool(p.new_height) != bool(p.new_width):
            raise self.error("image_data_param.new_height/new_width",
                             f"{p.new_height}/{p.new_width}: set both (resize) or neither")
        if p.batch_size <= 0:
            raise self.error("image_data_param.batch_size", f"is {p.batch_size}; must be > 0")
        lines = read_list_file(p.source)
        comm = world()
        skip = int(self.rng.integers(p.rand_skip)) if p.rand_skip else 0
        stream = ShardStream(len(lines), comm.rank, comm.size, shuffle=p.shuffle,
                             seed=options().shuffle_seed, start=skip)
        # The prefetch thread gets the source, not the layer: the layer stays collectable.
        self.source = ListSource(p.source, lines, stream)
        decoder = FileDecoder(p.root_folder, bool(p.is_color), p.new_height, p.new_width)
        self.start(self.source.next_items, decoder, self.source.where, p.batch_size,
                   self.param.data_param.prefetch)
