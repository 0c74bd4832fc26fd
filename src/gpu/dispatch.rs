//! Turning an item count into a dispatch. Kernels use 256 invocations per workgroup; above 65535
//! workgroups the grid becomes 2-D (the shaders' `item_index` / `group_index` flatten it back).

use super::kernels::Grid;
use super::kernels::Kernel;
use super::Gpu;

/// Invocations per workgroup in every shader.
pub const WORKGROUP: u32 = 256;

/// Workgroup counts (x, y) for `groups` workgroups, 2-D above `max_per_dim`.
pub fn workgroups_for(groups: u32, max_per_dim: u32) -> (u32, u32) {
    let groups = groups.max(1);
    if groups <= max_per_dim {
        (groups, 1)
    } else {
        let y = groups.div_ceil(max_per_dim);
        (groups.div_ceil(y), y)
    }
}

/// Records one kernel over `items` items (a single-workgroup reduction ignores the count).
pub fn dispatch(gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, kernel: Kernel, group: &wgpu::BindGroup, items: u32) {
    let groups = match kernel.grid() {
        Grid::InvocationPerItem => items.div_ceil(WORKGROUP),
        Grid::WorkgroupPerItem => items,
        Grid::Single => 1,
    };
    if groups == 0 {
        return;
    }
    let pipeline = gpu.pipelines().pipeline(kernel);
    gpu.count_dispatch();
    pass.set_pipeline(&pipeline);
    pass.set_bind_group(0, group, &[]);
    let (x, y) = workgroups_for(groups, gpu.limits().max_compute_workgroups_per_dimension);
    pass.dispatch_workgroups(x, y, 1);
}

/// A bind group of `layout` with `resources` at bindings 0, 1, 2, … in order (the one way every
/// network, optimizer, gather, landscape and surface bind group is built).
pub fn bind_group<'a>(
    gpu: &Gpu,
    label: &str,
    layout: super::BindLayout,
    resources: impl IntoIterator<Item = wgpu::BindingResource<'a>>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'a>> = resources
        .into_iter()
        .enumerate()
        .map(|(i, resource)| wgpu::BindGroupEntry { binding: i as u32, resource })
        .collect();
    debug_assert_eq!(entries.len(), layout.entries().len(), "{layout:?}: wrong number of bindings");
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: gpu.pipelines().layout(layout),
        entries: &entries,
    })
}
