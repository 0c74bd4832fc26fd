//! How a network becomes dispatches: the activation arena's layout, and for each layer (each
//! op's own `plan` in its file: `dense.rs`, `conv.rs`, `pool.rs`, `activation.rs`, `loss.rs`)
//! the kernels it dispatches in each pass, over how many items, with which uniforms. `Network`
//! assembles the pass lists from these.

use super::{KernelSet, KernelTuning};
use super::{LayerOp, Phase, Resolved};
use crate::gpu::Kernel;
use crate::nn::meta::{LayerMeta, FLAG_INPUT_HAS_TANGENT};

/// How a kernel's item count follows the batch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Items {
    /// one invocation per element of a [rows, n] tensor
    PerRow(u32),
    /// one invocation per [`QUAD`] consecutive elements of a [rows, n] tensor (the element-wise
    /// kernels: activations, the residual add)
    Quads(u32),
    /// one invocation per TILE × TILE block of a [rows, n] tensor (the tiled kernels)
    Tiles(u32),
    /// one invocation per 8 channels (`conv::CHANNEL_TILE`) × 8 pixels (`conv::PIXEL_TILE`) of a
    /// [rows, channels, plane] tensor (the tiled conv forward)
    PixelTiles { channels: u32, plane: u32 },
    /// one invocation per 8 channels × `tiles_per_row` tiles of each of the `height` rows of
    /// every image (the tiled conv input cotangents: a row's tiles in stride phases)
    RowTiles { channels: u32, height: u32, tiles_per_row: u32 },
    /// one workgroup per SHARED_BLOCK × SHARED_BLOCK block of a [rows, n] tensor (the shared
    /// kernels' grid is a workgroup per item)
    Blocks(u32),
    /// one invocation per tile of a weight gradient and per run of `split_len` pixels of its
    /// reduction over [rows, plane] (the tiled conv weight gradients)
    SplitTiles { tiles: u32, plane: u32, split_len: u32 },
    /// one workgroup per run of `split_len` values of each of `groups` groups of [rows, plane]
    /// values (the BatchNorm reductions: a channel's values over the batch)
    GroupChunks { groups: u32, plane: u32, split_len: u32 },
    /// a fixed count, whatever the batch
    Fixed(u32),
}

impl Items {
    /// The item count for a batch of `rows`.
    pub fn count(self, rows: u32) -> u32 {
        match self {
            Items::PerRow(n) => rows * n,
            Items::Quads(n) => (rows * n).div_ceil(QUAD),
            Items::Tiles(n) => rows.div_ceil(TILE) * n.div_ceil(TILE),
            Items::PixelTiles { channels, plane } => {
                channels.div_ceil(super::conv::CHANNEL_TILE as u32)
                    * (rows * plane).div_ceil(super::conv::PIXEL_TILE as u32)
            }
            Items::RowTiles { channels, height, tiles_per_row } => {
                channels.div_ceil(super::conv::CHANNEL_TILE as u32) * rows * height * tiles_per_row
            }
            Items::Blocks(n) => rows.div_ceil(SHARED_BLOCK) * n.div_ceil(SHARED_BLOCK),
            Items::SplitTiles { tiles, plane, split_len } => tiles * (rows * plane).div_ceil(split_len),
            Items::GroupChunks { groups, plane, split_len } => groups * (rows * plane).div_ceil(split_len),
            Items::Fixed(n) => n,
        }
    }
}

/// Elements per invocation of the element-wise kernels (`QUAD` in shaders/common.wgsl).
pub const QUAD: u32 = 4;

/// The register tile of the `*_tiled` kernels (`TILE` in shaders/dense_tiled.wgsl).
pub(crate) const TILE: u32 = 4;

/// The output block of a workgroup of the `*_shared` kernels (`SHARED_BLOCK` in
/// shaders/dense_shared.wgsl).
pub(crate) const SHARED_BLOCK: u32 = 64;

/// One kernel of a pass, with its layer's bind group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dispatch {
    pub kernel: Kernel,
    pub group: usize,
    pub items: Items,
}

/// One layer's (or the loss's) dispatches in each pass, in the order they run.
#[derive(Default)]
pub(crate) struct LayerPasses {
    pub fwd: Vec<Dispatch>,
    pub tangent: Vec<Dispatch>,
    pub bwd: Vec<Dispatch>,
    pub rbwd: Vec<Dispatch>,
    /// a fused forward + tangent (None: `fwd` then `tangent`)
    pub fwd_tangent: Option<Vec<Dispatch>>,
    /// a fused backward + R-backward (None: `bwd` then `rbwd`)
    pub bwd_rbwd: Option<Vec<Dispatch>>,
    /// whether `rbwd` run alone (a curvature pass after the whole backward: several probes a
    /// step) writes the input cotangent g_x again, as the tiled conv's fused kernel does: a
    /// block input's fan-in sum must then be redone after it, or g_x loses the shortcut's share
    pub rbwd_rewrites_input_grad: bool,
    /// floats of scratch the layer's passes need in the activation arena; layers run one at a
    /// time, so they share one region (`plan_layers`), and the layer's offsets into it are set
    /// relative to its start and moved there by `rebase_scratch`
    pub scratch: usize,
    /// adds the scratch region's start to the meta's offsets into it (None: no scratch)
    pub rebase_scratch: Option<fn(&mut LayerMeta, u32)>,
}

impl LayerPasses {
    /// A kernel family's four passes (fwd, tangent, bwd, rbwd), one invocation per output element
    /// forward and per input element backward.
    pub fn per_row(group: usize, kernels: [Kernel; 4], out_items: u32, in_items: u32) -> LayerPasses {
        Self::with_items(group, kernels, Items::PerRow(out_items), Items::PerRow(in_items))
    }

    /// An element-wise kernel family's four passes over n elements per row, one invocation per
    /// [`QUAD`] elements.
    pub fn per_quad(group: usize, kernels: [Kernel; 4], n: u32) -> LayerPasses {
        Self::with_items(group, kernels, Items::Quads(n), Items::Quads(n))
    }

    fn with_items(group: usize, [f, t, b, r]: [Kernel; 4], out_items: Items, in_items: Items) -> LayerPasses {
        let d = |kernel, items| vec![Dispatch { kernel, group, items }];
        LayerPasses {
            fwd: d(f, out_items),
            tangent: d(t, out_items),
            bwd: d(b, in_items),
            rbwd: d(r, in_items),
            fwd_tangent: None,
            bwd_rbwd: None,
            rbwd_rewrites_input_grad: false,
            scratch: 0,
            rebase_scratch: None,
        }
    }
}

/// What a layer's `plan` is told about where it sits.
pub(crate) struct LayerContext {
    /// Its slot among the layer uniforms (and bind groups).
    pub group: usize,
    /// The largest batch.
    pub rows: usize,
    /// Naive or tiled kernels.
    pub kernels: KernelSet,
    /// The kernel choices for the adapter's class (CPU, integrated, discrete).
    pub tuning: KernelTuning,
    /// The network has the curvature buffers (tangents, R-cotangents, H z).
    pub curvature: bool,
    /// The layer's input depends on θ (not the data): it needs an input cotangent.
    pub has_input_grad: bool,
}

impl LayerContext {
    /// One dispatch of this layer.
    pub fn d(&self, kernel: Kernel, items: Items) -> Dispatch {
        Dispatch { kernel, group: self.group, items }
    }
}

/// Where a node's values x, tangents t, cotangents g and R-cotangents r start.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NodeOffsets {
    pub x: u32,
    pub t: u32,
    pub g: u32,
    pub r: u32,
    /// a residual block input's second cotangent and R-cotangent slots (the add's share,
    /// summed into g and r by `fanout_sum`); 0 elsewhere
    pub g2: u32,
    pub r2: u32,
}

/// The activation arena: every node's value x and cotangent g; with curvature, tangents t and
/// R-cotangents r planned by liveness (below); then the loss's slots. Layers take scratch (max
/// pooling's argmax) with [`ArenaLayout::take`].
///
/// Liveness, so that curvature costs less than a second copy of every activation:
/// - x and g stay whole: the backward pass may run in full before the R-backward passes (several
///   probes per step), which read every g.
/// - A tangent has its own slot only where the R-backward pass reads it ([`tangent_kept`]): at
///   the input of a dense or conv layer (r_gW = r_yᵀx + g_yᵀt_x), of a smooth activation
///   (f″ t_x g_y) and at the logits (the loss's R-op); node 0 keeps its (zero) tangent too
///   unless the first layer has parameters (then node 0 has no t, g or r at all). A
///   tangent only the next layer's tangent kernel reads (a pooling layer's input, ReLU's input)
///   lives in the R-cotangent region below: the R-backward pass, which writes that region, runs
///   after the tangent pass and never reads it.
/// - A kept tangent's slot then takes the node's R-cotangent: node i's tangent is read only by
///   layer i's R-backward dispatches, and there the weight kernels (which read t_x) run before
///   the input kernels (which write r_x: dense and conv plans push them in that order), while an
///   activation, or an activation folded into a dense layer's epilogue, reads t_x and writes r_x
///   element by element in one invocation. Every R-backward pass follows a tangent pass that
///   rewrites the tangents. The logits are the exception (the loss's R-op mixes a row's tangents).
/// - The other R-cotangents are written back to front, each read once by the layer before: node
///   i's r is live only while node i+1's is read and node i−1's written. A dense layer with
///   folded activations (`fold_activations_into_dense`) reads node k+2's and writes node k's in
///   one kernel, and writes the tangents of nodes k+1 and k+2 while reading node k's. So these
///   nodes share one region where each sits clear of its two neighbours on each side, at the
///   lowest such offset (node 0's r keeps its own slot).
///
/// Every slot starts on a multiple of [`SLOT_ALIGN`] floats and none starts at 0 (offset 0 of
/// a layer's uniforms means "unused"), so that each layer can bind just the slots it reaches
/// ([`ArenaLayout::windows`]): the arena may then be larger than one storage binding.
pub(crate) struct ArenaLayout {
    pub nodes: Vec<NodeOffsets>,
    pub target_off: u32,
    pub loss_off: u32,
    pub hit_off: u32,
    pub lse_off: u32,
    pub t_loss_off: u32,
    /// floats so far
    pub len: usize,
    /// floats of node values, of tangents in their own slots, and of cotangents with the
    /// R-cotangent region (which also holds the tangents only the tangent pass reads)
    pub values: usize,
    pub tangents: usize,
    pub cotangents: usize,
    /// floats between slots (each starts on a multiple of [`SLOT_ALIGN`]) and the unused first slot
    pub padding: usize,
    /// every slot taken, (start, length) in floats, in order
    regions: Vec<(usize, usize)>,
}

/// Slots start on a multiple of this many floats: 256 bytes, WebGPU's largest allowed
/// `minStorageBufferOffsetAlignment`, so a binding may start at any slot.
pub(crate) const SLOT_ALIGN: usize = 64;

/// A range of the activation arena one binding of a layer's bind group covers, in floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: usize,
    pub len: usize,
}

/// Whether the R-backward pass reads node `i`'s tangent (see [`ArenaLayout`]): node 0, the
/// logits, and the input of a dense, conv, normalisation or smooth activation layer.
pub(crate) fn tangent_kept(model: &Resolved, i: usize) -> bool {
    if i == 0 || i + 1 == model.nodes.len() {
        return true;
    }
    model.layers.iter().filter(|l| l.input == i).any(|l| l.op.op().reads_input_tangent())
}

/// Offsets (from the region's start) for nodes 1.. of `sizes` such that each node is clear of
/// the two before and the two after it, lowest offset first; and the region's length.
fn shared_region(sizes: &[usize]) -> (Vec<usize>, usize) {
    let mut at = vec![0usize; sizes.len()];
    let mut len = 0;
    for i in 1..sizes.len() {
        let neighbours: Vec<usize> = (1..=2).filter(|&d| i > d).map(|d| i - d).collect();
        let clear =
            |s: usize| neighbours.iter().all(|&j| sizes[j] == 0 || s >= at[j] + sizes[j] || at[j] >= s + sizes[i]);
        // the lowest clear start is 0 or the end of a neighbour (the furthest end always is)
        let start = std::iter::once(0)
            .chain(neighbours.iter().map(|&j| at[j] + sizes[j]))
            .filter(|&s| clear(s))
            .min()
            .unwrap_or(0);
        at[i] = start;
        len = len.max(start + sizes[i]);
    }
    (at, len)
}

impl ArenaLayout {
    /// The layout for `rows` rows of `model`, on a device whose storage bindings hold
    /// `binding_floats` floats (slots are shared only within that reach).
    pub fn new(model: &Resolved, rows: usize, curvature: bool, binding_floats: usize) -> ArenaLayout {
        let chain = ArenaLayout::with_nodes(model, rows, curvature, binding_floats, model.is_graph());
        // a chain's one shared region sits at the end of the arena, so a layer's window reaches
        // from its own nodes to there: past one binding, share slots locally instead, as a graph does
        if !model.is_graph() && chain.len > binding_floats {
            return ArenaLayout::with_nodes(model, rows, curvature, binding_floats, true);
        }
        chain
    }

    /// The layout with the chain's shared region, or with slots shared locally (`local`).
    fn with_nodes(model: &Resolved, rows: usize, curvature: bool, binding_floats: usize, local: bool) -> ArenaLayout {
        let mut l = ArenaLayout {
            nodes: Vec::new(),
            target_off: 0,
            loss_off: 0,
            hit_off: 0,
            lse_off: 0,
            t_loss_off: 0,
            len: 0,
            values: 0,
            tangents: 0,
            cotangents: 0,
            padding: SLOT_ALIGN,
            regions: Vec::new(),
        };
        // offset 0 stays unused: a layer's uniforms leave the slots it does not use at 0
        l.take(SLOT_ALIGN);
        // without curvature there are no tangents or R-cotangents: their offsets are never used
        // (the passes that would read them are empty)
        // the data (node 0) has no tangent, cotangent or R-cotangent when the first layer has
        // parameters: that layer reads no input tangent (FLAG_INPUT_HAS_TANGENT is off) and
        // writes no input cotangents (`has_input_grad`); a parameter-free first layer (pooling
        // the image) propagates node 0's zero tangent, so it is kept
        let data_is_inert = model
            .layers
            .first()
            .is_some_and(|l| l.input == 0 && matches!(l.op, LayerOp::Dense(_) | LayerOp::Conv2d(_)));
        if local {
            l.local_nodes(model, rows, curvature, data_is_inert, binding_floats);
            return l.with_loss_slots(model, rows);
        }
        for (i, &w) in model.nodes.iter().enumerate() {
            let own = |l: &mut ArenaLayout, wanted: bool| if wanted { l.take(rows * w) } else { 0 };
            let live = !(i == 0 && data_is_inert);
            let x = l.take(rows * w);
            let t = own(&mut l, curvature && live && tangent_kept(model, i));
            let g = own(&mut l, live);
            let r = own(&mut l, curvature && live && i == 0);
            l.nodes.push(NodeOffsets { x, t, g, r, ..Default::default() });
            l.values += rows * w;
            l.tangents += rows * w * usize::from(curvature && live && tangent_kept(model, i));
            l.cotangents += rows * w * (usize::from(live) + usize::from(curvature && live && i == 0));
        }
        if curvature {
            // a kept tangent's slot takes its node's R-cotangent (written after the last read of
            // the tangent, see above); the logits' R-op reads the whole tangent row, so the
            // logits' R-cotangent goes to the shared region with the nodes whose tangent is not kept
            let last = model.nodes.len() - 1;
            let in_region = |i: usize| i == last || !tangent_kept(model, i);
            let sizes: Vec<usize> =
                model.nodes.iter().enumerate().map(|(i, &w)| if in_region(i) { rows * w } else { 0 }).collect();
            let (at, len) = shared_region(&sizes);
            let base = l.take(len) as usize;
            l.cotangents += len;
            for (i, (node, start)) in l.nodes.iter_mut().zip(at).enumerate().skip(1) {
                if !in_region(i) {
                    node.r = node.t;
                    continue;
                }
                node.r = (base + start) as u32;
                if !tangent_kept(model, i) {
                    node.t = node.r;
                }
            }
        }
        l.with_loss_slots(model, rows)
    }

    /// The loss's slots after the nodes.
    fn with_loss_slots(mut self, model: &Resolved, rows: usize) -> ArenaLayout {
        self.target_off = self.take(rows * model.loss.target_width(model.output_width()));
        self.loss_off = self.take(rows);
        self.hit_off = self.take(rows);
        self.lse_off = self.take(rows);
        self.t_loss_off = self.take(rows);
        self
    }

    /// A branching model's nodes (and a chain's too large for one binding). Values and
    /// cotangents each get a slot of their own, and so does the second cotangent pair (g2, r2)
    /// of every block input that needs a cotangent. Tangents and R-cotangents follow the chain's
    /// liveness rules (above), with one more kind of node that keeps its own slots: a block
    /// input, read by two layers (its tangent by the body's first layer and by the add; its
    /// R-cotangent written by the first and summed with r2 by the fan-in sum), and the data.
    /// Every other node's R-cotangent takes its tangent's slot where the tangent is kept
    /// ([`tangent_kept`]: read by an R-backward), and a shared slot, with its tangent, where it
    /// is not (the input of a ReLU, of an add, of a pooling layer). As in the chain's region, such
    /// a node is live only while its neighbours are (every layer but the add reads its input node
    /// and writes the next, a dense layer with folded activations the next two, and the add's far
    /// operand, the block input, is never shared), so a slot last used by a node three or more
    /// places back may be reused. A slot is reused only near where it lies: a layer binds one
    /// window from its lowest slot to its highest, which must stay within `binding_floats` (the
    /// device's binding limit), and never across an add's block input (its `side` window).
    fn local_nodes(
        &mut self,
        model: &Resolved,
        rows: usize,
        curvature: bool,
        data_is_inert: bool,
        binding_floats: usize,
    ) {
        // nodes read away from their producer (an add's skip, a block input the projection
        // shortcut and the body both read) keep their own slots
        let skips: Vec<usize> = model
            .layers
            .iter()
            .filter_map(|l| l.op.op().skip())
            .chain((1..model.nodes.len()).filter(|&i| model.is_fan_out(i)))
            .collect();
        let last = model.nodes.len() - 1;
        let live = |i: usize| !(i == 0 && data_is_inert);
        // nodes whose tangent and R-cotangent share slots
        let shared =
            |i: usize| curvature && live(i) && i > 0 && i != last && !skips.contains(&i) && !tangent_kept(model, i);
        // the shared slots: (offset, floats, the last node that used it)
        let mut pool: Vec<(usize, usize, usize)> = Vec::new();
        // an add binds its block input as `side` and its two other nodes as `work`, which may
        // not overlap: those nodes' shared slots must lie past the block input's slots
        let mut after_skip = vec![None; model.nodes.len()];
        for l in &model.layers {
            if let Some(skip) = l.op.op().skip() {
                after_skip[l.input] = Some(skip);
                after_skip[l.output] = Some(skip);
            }
        }
        let mut node_end = Vec::with_capacity(model.nodes.len());
        for (i, &w) in model.nodes.iter().enumerate() {
            let n = rows * w;
            let take = |l: &mut ArenaLayout, wanted: bool| if wanted { l.take(n) } else { 0 };
            let x = take(self, true);
            let own_t = curvature && live(i) && !shared(i);
            let mut t = take(self, own_t);
            let g = take(self, live(i));
            // as in the chain: a node's R-cotangent takes its tangent's slot, written by its
            // consumer's R-backward after that pass's last read of the tangent (the kernels read
            // the input tangent element-wise or before the input R-cotangent is written; the
            // add's R-backward reads no tangent). The data and the logits keep their own: the
            // first layer may read node 0's tangent throughout, and the loss's R-op reads the
            // whole logits tangent row while it writes the logits' R-cotangent.
            let r_own = curvature && live(i) && (i == 0 || i == last);
            let mut r = if own_t && !r_own { t } else { take(self, r_own) };
            let fan_out = live(i) && i > 0 && model.is_fan_out(i);
            let g2 = take(self, fan_out);
            let r2 = take(self, fan_out && curvature);
            if shared(i) {
                // the consumer's window reaches from the slot to the end of the next node's
                // (at most five roles: x, t, g, g2, r2)
                let next = model.nodes.get(i + 1).map_or(0, |&w| 5 * rows * w);
                let here = self.len;
                let floor = after_skip[i].map_or(0, |skip: usize| node_end[skip]);
                let free = pool.iter_mut().rev().find(|(off, len, used)| {
                    *len >= n && *used + 3 <= i && *off >= floor && here - *off + next + SLOT_ALIGN <= binding_floats
                });
                let off = match free {
                    Some(slot) => {
                        slot.2 = i;
                        slot.0
                    }
                    None => {
                        let off = self.take(n) as usize;
                        self.cotangents += n;
                        pool.push((off, n, i));
                        off
                    }
                };
                (t, r) = (off as u32, off as u32);
            }
            self.nodes.push(NodeOffsets { x, t, g, r, g2, r2 });
            node_end.push(self.len);
            self.values += n;
            self.tangents += n * usize::from(own_t);
            self.cotangents +=
                n * (usize::from(live(i)) + usize::from(r_own) + usize::from(fan_out) * (1 + usize::from(curvature)));
        }
    }

    /// A slot of `n` more floats; its offset.
    pub fn take(&mut self, n: usize) -> u32 {
        let off = self.len.next_multiple_of(SLOT_ALIGN);
        self.padding += off - self.len;
        self.len = off + n;
        self.regions.push((off, n));
        off as u32
    }

    /// The windows of the arena that `meta`'s kernels reach through `work` and through `side`
    /// (None: that binding reaches nothing), each from the start of the first slot its offsets
    /// point into to the end of the last; and `meta` with its offsets rebased to count from
    /// them. `pre_in_side`: the meta is a residual add's (its block input is read through `side`).
    pub fn windows(&self, meta: &mut LayerMeta, pre_in_side: bool) -> [Option<Window>; 2] {
        let mut spans: [Option<(usize, usize)>; 2] = [None, None];
        meta.visit_arena_offsets(pre_in_side, |binding, off| {
            if *off == 0 {
                return;
            }
            let (start, len) = self.slot_of(*off as usize);
            let span = &mut spans[binding as usize];
            *span = Some(match *span {
                None => (start, start + len),
                Some((a, b)) => (a.min(start), b.max(start + len)),
            });
        });
        let windows = spans.map(|s| s.map(|(a, b)| Window { start: a, len: (b - a).max(1) }));
        meta.visit_arena_offsets(pre_in_side, |binding, off| {
            if let (true, Some(w)) = (*off != 0, windows[binding as usize]) {
                *off -= w.start as u32;
            }
        });
        windows
    }

    /// The slot that offset `off` falls in (the last one starting at or before it).
    fn slot_of(&self, off: usize) -> (usize, usize) {
        let i = self.regions.partition_point(|&(start, _)| start <= off);
        let (start, len) = self.regions[i.saturating_sub(1)];
        debug_assert!(off < start + len.max(1), "offset {off} is past its slot ({start}, {len})");
        (start, len)
    }

    /// A layer's uniforms with its input and output nodes' offsets filled in.
    pub fn layer_meta(&self, input: usize, output: usize) -> LayerMeta {
        let (i, o) = (self.nodes[input], self.nodes[output]);
        LayerMeta {
            x_off: i.x,
            y_off: o.x,
            t_x_off: i.t,
            t_y_off: o.t,
            g_x_off: i.g,
            g_y_off: o.g,
            r_x_off: i.r,
            r_y_off: o.r,
            flags: if input > 0 { FLAG_INPUT_HAS_TANGENT } else { 0 },
            ..Default::default()
        }
    }
}

/// Folds each activation that sits next to a dense layer into that layer's tiled kernels
/// (shaders/dense_tiled.wgsl, "activation epilogues"): a dense layer followed by an activation
/// writes the activation's output and tangent itself; one preceded by an activation writes the
/// activation's input cotangent and its R-op. The activation's own dispatches of those passes
/// are dropped. Exact: the epilogue evaluates the same f, f′, f″ as the activation kernels.
pub(crate) fn fold_activations_into_dense(
    model: &Resolved,
    nodes: &[NodeOffsets],
    metas: &mut [LayerMeta],
    passes: &mut [LayerPasses],
) {
    let layers = &model.layers;
    for i in 0..layers.len().saturating_sub(1) {
        let (a, b) = (&layers[i], &layers[i + 1]);
        if b.input != a.output {
            continue;
        }
        match (a.op, b.op) {
            (LayerOp::Dense(_), LayerOp::Activation(super::activation::ActivationOp { act, .. }))
                if act.kernels().is_some() =>
            {
                let post = nodes[b.output];
                metas[i].act_fwd = act.code();
                metas[i].post_x_off = post.x;
                metas[i].post_t_off = post.t;
                let p = &mut passes[i + 1];
                p.fwd.clear();
                p.tangent.clear();
                p.fwd_tangent = Some(Vec::new());
            }
            (LayerOp::Activation(super::activation::ActivationOp { act, .. }), LayerOp::Dense(_))
                if act.kernels().is_some() =>
            {
                let pre = nodes[a.input];
                metas[i + 1].act_bwd = act.code();
                metas[i + 1].pre_x_off = pre.x;
                metas[i + 1].pre_t_off = pre.t;
                metas[i + 1].pre_g_off = pre.g;
                metas[i + 1].pre_r_off = pre.r;
                let p = &mut passes[i];
                p.bwd.clear();
                p.rbwd.clear();
                p.bwd_rbwd = Some(Vec::new());
            }
            _ => {}
        }
    }
}

/// The whole network's dispatch list of each [`Phase`].
pub(crate) struct PassLists {
    forward: Vec<Dispatch>,
    tangent: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    r_backward: Vec<Dispatch>,
    forward_tangent: Vec<Dispatch>,
    backward_r_backward: Vec<Dispatch>,
}

impl PassLists {
    /// Forward passes run the layers in order, reverse passes back to front.
    pub fn assemble(layers: &[LayerPasses]) -> PassLists {
        let forward = |f: &dyn Fn(&LayerPasses) -> Vec<Dispatch>| layers.iter().flat_map(f).collect::<Vec<_>>();
        let reverse = |f: &dyn Fn(&LayerPasses) -> Vec<Dispatch>| layers.iter().rev().flat_map(f).collect::<Vec<_>>();
        PassLists {
            forward: forward(&|p| p.fwd.clone()),
            tangent: forward(&|p| p.tangent.clone()),
            backward: reverse(&|p| p.bwd.clone()),
            r_backward: reverse(&|p| p.rbwd.clone()),
            forward_tangent: forward(&|p| {
                p.fwd_tangent.clone().unwrap_or_else(|| [&p.fwd[..], &p.tangent[..]].concat())
            }),
            backward_r_backward: reverse(&|p| p.bwd_rbwd.clone().unwrap_or_else(|| [&p.bwd[..], &p.rbwd[..]].concat())),
        }
    }

    /// Drops the passes that need curvature buffers (a network built without them).
    pub fn without_curvature(mut self) -> PassLists {
        for list in [&mut self.tangent, &mut self.r_backward, &mut self.forward_tangent, &mut self.backward_r_backward]
        {
            list.clear();
        }
        self
    }

    /// The dispatches of one phase.
    pub fn get(&self, phase: Phase) -> &[Dispatch] {
        match phase {
            Phase::Forward => &self.forward,
            Phase::Tangent => &self.tangent,
            Phase::Backward => &self.backward,
            Phase::RBackward => &self.r_backward,
            Phase::ForwardTangent => &self.forward_tangent,
            Phase::BackwardRBackward => &self.backward_r_backward,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_region_keeps_each_node_clear_of_two_neighbours_each_side() {
        for sizes in [vec![5, 8, 8, 2, 4, 4, 1, 1], vec![3, 1, 9, 1, 9, 1], vec![1, 7], vec![4, 4, 4, 4, 4, 4]] {
            let (at, len) = shared_region(&sizes);
            for i in 1..sizes.len() {
                assert!(at[i] + sizes[i] <= len);
                for j in (i + 1)..sizes.len().min(i + 3) {
                    let apart = at[i] + sizes[i] <= at[j] || at[j] + sizes[j] <= at[i];
                    assert!(apart, "{sizes:?}: nodes {i} and {j} overlap ({at:?})");
                }
            }
            let sum: usize = sizes[1..].iter().sum();
            assert!(len <= sum, "never more than a slot per node");
        }
        // zero-sized nodes (R-cotangents kept in their tangent's slot) clash with nothing
        let (at, len) = shared_region(&[1, 4, 0, 4, 0, 0, 3]);
        assert_eq!((at[3], at[6], len), (4, 0, 8), "{at:?}");
        // a CNN's sizes: 8 nodes share the space of ~3
        let (_, len) = shared_region(&[784, 6272, 6272, 1568, 3136, 3136, 784, 10]);
        assert_eq!(len, 6272 + 6272 + 1568);
    }
}
