// Copies a mini-batch out of a data set that lives on the GPU (`BindLayout::Gather`):
//   x[b, f]      = data[index[b], f]          f < layer.n_in  (features)
//   target[b, j] = targets[index[b], j]       j < layer.target_width (1 for class labels)
// so a training step uploads only B row indices.

@group(0) @binding(0) var<uniform> layer: LayerMeta;
@group(0) @binding(1) var<uniform> batch: BatchMeta;
@group(0) @binding(2) var<storage, read> data: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;
@group(0) @binding(4) var<storage, read> index: array<u32>;
@group(0) @binding(5) var<storage, read_write> work: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.n_in) { return; }
    let b = idx / layer.n_in;
    let f = idx % layer.n_in;
    work[layer.x_off + idx] = data[index[b] * layer.n_in + f];
}

@compute @workgroup_size(256)
fn gather_targets(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = item_index(gid, nwg);
    if (idx >= batch.rows * layer.target_width) { return; }
    let b = idx / layer.target_width;
    let j = idx % layer.target_width;
    work[layer.target_off + idx] = targets[index[b] * layer.target_width + j];
}
