// The `side` binding as floats (see shaders/layer_bindings.wgsl): a layer's scratch and a
// residual add's block input. The conv module declares the same binding as vec4s instead
// (shaders/conv_tiled.wgsl); the bind group layout does not fix the element type.
@group(0) @binding(8) var<storage, read_write> side: array<f32>;
