// Gathers a mini-batch of images kept on the GPU as their bytes (`BindLayout::GatherPixels`,
// src/data/device.rs), decoding, normalising and augmenting each pixel as it is copied:
//   x[b, c, y, x] = table[c, byte(index[b], c, ys, xs)]      if (ys, xs) lies in the image
//                 = table[c, 256]                             otherwise (the padding's value)
// with ys = y + dy_b and xs = (flip_b ? W − 1 − x : x) + dx_b. `table` holds, per channel, the
// value of each of the 256 bytes exactly as the host decodes it (p / 255, then the data set's
// per-channel normalisation, in f32 on the host), so a gathered batch is bit-identical to the
// host's rows. (dy_b, dx_b, flip_b) are row b's random crop and flip (`Augment::draw`, the
// counter hash of the batch's key), used only by a training step's batch (norm_mode 1); every
// other batch is gathered as it is.
//
// The bytes are packed 4 to a u32, row_words words per image, rows_per_chunk images per buffer:
// 50,000 CIFAR images are 154 MB, more than one storage binding may be (128 MiB by default), so
// they lie in up to three buffers of whole images.

struct PixelMeta {
    channels: u32, height: u32, width: u32, row_words: u32,
    rows_per_chunk: u32, _pad0: u32, _pad1: u32, _pad2: u32,
};

@group(0) @binding(0) var<uniform> layer: LayerMeta;
@group(0) @binding(1) var<uniform> batch: BatchMeta;
@group(0) @binding(2) var<uniform> pix: PixelMeta;
@group(0) @binding(3) var<storage, read> chunk0: array<u32>;
@group(0) @binding(4) var<storage, read> chunk1: array<u32>;
@group(0) @binding(5) var<storage, read> chunk2: array<u32>;
// channels × 257: the values of bytes 0..255, then the padding's
@group(0) @binding(6) var<storage, read> table: array<f32>;
@group(0) @binding(7) var<storage, read> index: array<u32>;
// per batch row: dy, dx, flip (0 or 1)
@group(0) @binding(8) var<storage, read> shifts: array<i32>;
@group(0) @binding(9) var<storage, read_write> work: array<f32>;

// Word `w` of image-byte chunk `chunk`.
fn pixel_word(chunk: u32, w: u32) -> u32 {
    if (chunk == 0u) {
        return chunk0[w];
    } else if (chunk == 1u) {
        return chunk1[w];
    }
    return chunk2[w];
}

// One invocation per image line (b, c, y): its W pixels, so the index arithmetic (divisions,
// the chunk, the row's crop and flip) is done once per line, not per pixel.
@compute @workgroup_size(256)
fn gather_pixels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    let h = pix.height;
    let w = pix.width;
    let lines = pix.channels * h;
    if (idx >= batch.rows * lines) { return; }
    let b = idx / lines;
    let c = (idx % lines) / h;
    let y = idx % h;
    var dy = 0;
    var dx = 0;
    var flip = false;
    if (batch.norm_mode == 1u) {
        dy = shifts[3u * b];
        dx = shifts[3u * b + 1u];
        flip = shifts[3u * b + 2u] != 0;
    }
    let out = layer.x_off + idx * w;
    let fill = table[c * 257u + 256u];
    let ys = i32(y) + dy;
    if (ys < 0 || ys >= i32(h)) {
        for (var x = 0u; x < w; x++) {
            work[out + x] = fill;
        }
        return;
    }
    let row = index[b];
    let chunk = row / pix.rows_per_chunk;
    let word0 = (row % pix.rows_per_chunk) * pix.row_words;
    // byte offset of the source line within its image
    let line = (c * h + u32(ys)) * w;
    for (var x = 0u; x < w; x++) {
        let xs = i32(select(x, w - 1u - x, flip)) + dx;
        var v = fill;
        if (xs >= 0 && xs < i32(w)) {
            let i = line + u32(xs);
            let p = (pixel_word(chunk, word0 + i / 4u) >> ((i % 4u) * 8u)) & 0xffu;
            v = table[c * 257u + p];
        }
        work[out + x] = v;
    }
}
