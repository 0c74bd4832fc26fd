//! CPU-only: every WGSL module parses and validates with naga under WebGPU's capabilities, every
//! kernel's entry point exists with the declared workgroup size, every global binding matches the
//! Rust-side bind-group layout, and the uniform structs match their Rust mirrors byte for byte.

mod common;

use adahessian_wgpu::gpu::kernels::{Access, ShaderModule};
use adahessian_wgpu::gpu::meta::BatchMeta;
use adahessian_wgpu::nn::meta::LayerMeta;
use adahessian_wgpu::optim::meta::{SliceMeta, StepMeta};

/// Every module some kernel lives in, once each (each op declares its own; `kernels()` lists them).
fn modules() -> Vec<&'static ShaderModule> {
    let mut modules: Vec<&'static ShaderModule> = Vec::new();
    for k in adahessian_wgpu::kernels() {
        match modules.iter().find(|m| m.name == k.module().name) {
            Some(m) => assert!(std::ptr::eq(*m, k.module()), "two modules are named {:?}", m.name),
            None => modules.push(k.module()),
        }
    }
    modules
}

fn parse(m: &ShaderModule) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(&m.source())
        .unwrap_or_else(|e| panic!("{m:?}: {}", e.emit_to_string(&m.source())));
    // Capabilities::empty(): nothing beyond what WebGPU guarantees (no f64, no float atomics)
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{m:?} does not validate: {}", e.emit_to_string(&m.source())));
    (module, info)
}

#[test]
fn every_module_parses_and_validates() {
    let modules = modules();
    assert!(modules.len() >= 13, "only {} modules", modules.len());
    for m in modules {
        parse(m);
    }
}

#[test]
fn every_kernel_has_its_entry_point_with_256_invocations() {
    let kernels = adahessian_wgpu::kernels();
    for &k in &kernels {
        let (module, _) = parse(k.module());
        let ep = module
            .entry_points
            .iter()
            .find(|e| e.name == k.entry_point())
            .unwrap_or_else(|| panic!("{k:?}: no entry point '{}' in {:?}", k.entry_point(), k.module()));
        assert_eq!(ep.stage, naga::ShaderStage::Compute, "{k:?}");
        assert_eq!(ep.workgroup_size, [256, 1, 1], "{k:?}: the dispatch code assumes 256 invocations");
    }
    // and no entry point is left without a kernel
    for m in modules() {
        let (module, _) = parse(m);
        for ep in &module.entry_points {
            assert!(
                kernels.iter().any(|k| k.module() == m && k.entry_point() == ep.name),
                "{m:?}::{} is declared by no wgsl_kernels! list and no method lists it",
                ep.name
            );
        }
    }
}

#[test]
fn shader_bindings_match_the_rust_layouts() {
    for m in modules() {
        let (module, _) = parse(m);
        let entries = m.layout.entries();
        let mut seen = vec![false; entries.len()];
        for (_, var) in module.global_variables.iter() {
            let Some(binding) = &var.binding else {
                continue;
            };
            assert_eq!(binding.group, 0, "{m:?}: {:?} not in group 0", var.name);
            let i = binding.binding as usize;
            assert!(i < entries.len(), "{m:?}: binding {i} ({:?}) not in the {:?} layout", var.name, m.layout);
            let access = match var.space {
                naga::AddressSpace::Uniform => Access::Uniform,
                naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                    Access::ReadWrite
                }
                naga::AddressSpace::Storage { .. } => Access::Read,
                other => panic!("{m:?}: unexpected address space {other:?}"),
            };
            assert_eq!(access, entries[i], "{m:?}: binding {i} ({:?})", var.name);
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "{m:?}: the layout has bindings the shader never declares: {seen:?}");
    }
    // WebGPU's default limit: at most 8 storage buffers per stage
    for m in modules() {
        let storage = m.layout.entries().iter().filter(|a| **a != Access::Uniform).count();
        assert!(storage <= 8, "{m:?}: {storage} storage buffers");
    }
}

fn struct_size(module: &naga::Module, name: &str) -> u32 {
    module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .map(|(_, t)| match t.inner {
            naga::TypeInner::Struct { span, .. } => span,
            _ => panic!("{name} is not a struct"),
        })
        .unwrap_or_else(|| panic!("no struct {name}"))
}

#[test]
fn uniform_structs_match_their_rust_mirrors() {
    let (layer, _) = parse(&adahessian_wgpu::nn::dense::kernels::DENSE);
    assert_eq!(struct_size(&layer, "LayerMeta") as usize, std::mem::size_of::<LayerMeta>());
    assert_eq!(struct_size(&layer, "BatchMeta") as usize, std::mem::size_of::<BatchMeta>());
    let (optim, _) = parse(&adahessian_wgpu::optim::kernels::OPTIM);
    assert_eq!(struct_size(&optim, "SliceMeta") as usize, std::mem::size_of::<SliceMeta>());
    assert_eq!(struct_size(&optim, "StepMeta") as usize, std::mem::size_of::<StepMeta>());
}

/// Every WGSL file in shaders/ is compiled into some module (a file added but never listed would
/// pass every other test here unseen), and no two kernels name the same entry point of one module
/// (the pipeline cache would build one pipeline twice under two names).
#[test]
fn every_shader_file_is_compiled_and_every_kernel_is_distinct() {
    let modules = modules();
    let sources: Vec<String> = modules.iter().map(|m| m.source().into_owned()).collect();
    let files = common::files_under(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders"), "wgsl");
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(sources.iter().any(|s| s.contains(text.trim())), "{} is in no module", path.display());
    }
    assert!(files.len() >= modules.len(), "only {} WGSL files found", files.len());
    let mut seen = std::collections::HashSet::new();
    for k in adahessian_wgpu::kernels() {
        assert!(
            seen.insert((k.module().name, k.entry_point())),
            "{k:?}: {:?}::{} is listed twice",
            k.module(),
            k.entry_point()
        );
    }
}

/// The GPU runtime knows no layer, loss or optimizer: each op declares its module and kernels in
/// its own file, so `src/gpu/` never names `nn` or `optim` (the import circle this replaced made
/// every new layer an edit of the runtime).
#[test]
fn the_gpu_runtime_imports_no_layer_and_no_optimizer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gpu");
    let files = common::files_under(&dir, "rs");
    assert!(files.len() >= 5, "only {} files under src/gpu", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for forbidden in ["crate::nn", "crate::optim", "super::super::"] {
                assert!(!code.contains(forbidden), "{}:{}: {forbidden} in {line:?}", path.display(), i + 1);
            }
        }
    }
}

/// The module's text without its `//` comments.
fn code(m: &ShaderModule) -> String {
    m.source().lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The headers `init; condition; step` of the module's `for` loops, in order.
fn for_headers(code: &str) -> Vec<[String; 3]> {
    let mut headers = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("for (") {
        let after = &rest[at + 5..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("an unclosed for header");
        let parts: Vec<String> = after[..end].split(';').map(|p| p.trim().to_string()).collect();
        assert_eq!(parts.len(), 3, "a for header that is not `init; condition; step`: {}", &after[..end]);
        headers.push([parts[0].clone(), parts[1].clone(), parts[2].clone()]);
        rest = &after[end..];
    }
    headers
}

/// The shader modules are built with naga's loop bounding off (`src/gpu/kernels.rs`,
/// `OUR_SHADER_CHECKS`), whose condition is that no loop runs forever. Every loop must have one
/// of the forms below, each of which ends; a new form fails here until it is argued and listed.
#[test]
fn every_loop_ends() {
    let mut counted = 0;
    for m in modules() {
        let code = code(m);
        assert!(!code.contains("loop {") && !code.contains("loop{"), "{m:?}: a bare `loop`");
        for [init, condition, step] in for_headers(&code) {
            let counter = init
                .strip_prefix("var ")
                .and_then(|s| s.split(['=', ':']).next())
                .map(str::trim)
                .unwrap_or_else(|| panic!("{m:?}: `for ({init}; ..)` declares no counter"));
            // a counter that climbs to a bound, by one or by a constant or stride at least 1 (the
            // host refuses a layer stride of 0; sizes stay far below 2^32, so no step wraps)
            let climbs = [
                format!("{counter}++"),
                format!("{counter} += WORKGROUP"),
                format!("{counter} += SHARED_K"),
                format!("{counter} += sh"),
                format!("{counter} += sw"),
            ]
            .contains(&step)
                && (condition.starts_with(&format!("{counter} < "))
                    || condition.strip_prefix(&format!("{counter} <= ")).is_some_and(|n| {
                        // `<=` only up to a literal: `i <= n` never ends for n = 2^32 − 1
                        n.strip_suffix('u').is_some_and(|d| d.parse::<u32>().is_ok_and(|d| d < u32::MAX))
                    }));
            // a tree reduction's halving stride, down to 0
            let halves = step == format!("{counter} /= 2u") && condition == format!("{counter} > 0u");
            assert!(climbs || halves, "{m:?}: `for ({init}; {condition}; {step})` has no form known to end");
            if step.ends_with("+= sh") || step.ends_with("+= sw") {
                let stride = if step.ends_with("sh") { "let sh = layer.stride_h;" } else { "let sw = layer.stride_w;" };
                assert!(code.contains(stride), "{m:?}: `{step}` steps by something other than `{stride}`");
            }
            counted += 1;
        }
        // the weight gradients' walks over a split: `left` pixels to go, each turn takes
        // `len = min(left, w_out - ow)` of them, at least 1 since ow < w_out (it wraps to 0 at
        // w_out) and w_out ≥ 1
        let walks: Vec<&str> = code.split("while (").skip(1).collect();
        for walk in walks {
            assert!(
                walk.starts_with("left > 0u)"),
                "{m:?}: a while loop other than the split walk: while ({}",
                &walk[..40]
            );
            let body =
                &walk[..walk.find("left -= len;").unwrap_or_else(|| panic!("{m:?}: a split walk that never takes"))];
            assert!(
                body.contains("let len = min(left, w_out - ow);"),
                "{m:?}: a split walk whose turn may take nothing"
            );
            let after = &walk[walk.find("left -= len;").unwrap()..];
            assert!(
                after.contains("if (ow == w_out) {\n            ow = 0u;"),
                "{m:?}: a split walk whose column does not wrap"
            );
            counted += 1;
        }
    }
    assert!(counted > 100, "only {counted} loops found: the scan is broken");
}
