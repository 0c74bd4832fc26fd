//! The human-readable model description: one line per layer in PyTorch's terms, used by
//! `model.json` files and the command line.
//!
//! ```text
//! input 1x8x8
//! conv2d(16, k=3, p=1)        # out channels, kernel, stride s=1, padding p=0 by default
//! batchnorm2d                 # also batchnorm1d (flat features) and layernorm (whole row)
//! relu
//! maxpool2d(2)                # kernel; stride defaults to the kernel
//! flatten
//! linear(10)
//! loss cross_entropy          # or mse
//! ```
//!
//! A residual block is `residual(shortcut=identity|pad|conv) { layers }`: its body's output plus
//! the shortcut of its input (`pad` is He et al.'s option A, for a stride or channel change,
//! without parameters; `conv` their option B, a 1×1 conv of the body's stride and width, no bias,
//! then BatchNorm2d, named `shortcut.0` and `shortcut.1`), e.g.
//! `residual(shortcut=pad) { conv2d(32, k=3, s=2, p=1); batchnorm2d; relu; conv2d(32, k=3, p=1);
//! batchnorm2d }; relu`. In `model.json` the braces are layer strings of their own (`"}"`).
//!
//! Arguments are read by position in the order shown (`conv2d(out, k, s, p)`, `maxpool2d(k, s)`,
//! `linear(out)`) or by name (`out`, `k`/`kernel`, `s`/`stride`, `p`/`padding`); an argument that
//! is not understood (an extra position, a repeat, `bias=`, `dilation=`, a typo) is an error
//! naming it, never dropped. The same layers separated by `;` fit on one line; `mlp:64-128-10:tanh` is shorthand for an MLP
//! (`:mse` at the end picks the MSE loss). `model.json` holds
//! `{"input": [1, 8, 8], "layers": ["conv2d(16, k=3, p=1)", ...], "loss": "cross_entropy"}`.

use super::{Activation, Layer, Loss, ModelSpec, Naming};
use crate::error::{Error, Result};

impl ModelSpec {
    /// Parses the text form, the `mlp:` shorthand or JSON (detected by a leading `{`), and checks
    /// every shape.
    pub fn parse(text: &str) -> Result<ModelSpec> {
        ModelSpec::parse_with_default_loss(text, Loss::CrossEntropy)
    }

    /// [`ModelSpec::parse`], with `default_loss` when the text names no loss: a regression task
    /// passes [`Loss::Mse`], so `mlp:4-1` on real-valued targets trains MSE, not cross-entropy.
    pub fn parse_with_default_loss(text: &str, default_loss: Loss) -> Result<ModelSpec> {
        let text = text.trim();
        let (mut spec, named) = if text.starts_with('{') {
            parse_json(text)?
        } else if let Some(rest) = text.strip_prefix("mlp:") {
            parse_mlp(rest)?
        } else {
            parse_lines(text)?
        };
        spec.loss = named.unwrap_or(default_loss);
        spec.resolve()?;
        Ok(spec)
    }

    /// The text form, one layer per line (parses back to the same model).
    pub fn to_text(&self) -> String {
        let mut out = format!("input {}\n", shape_text(&self.input));
        for l in &self.layers {
            out.push_str(&layer_text(l));
            out.push('\n');
        }
        out.push_str(&format!("loss {}\n", self.loss.name()));
        if self.naming != Naming::Sequential {
            out.push_str(&format!("names {}\n", self.naming.name()));
        }
        out
    }

    /// The text form on one line, layers separated by `; ` (parses back to the same model).
    pub fn to_line(&self) -> String {
        self.to_text().lines().collect::<Vec<_>>().join("; ")
    }

    /// The `model.json` form.
    pub fn to_json(&self) -> String {
        let layers: Vec<serde_json::Value> = self.layers.iter().map(|l| layer_text(l).into()).collect();
        let mut value = serde_json::json!({ "input": self.input, "layers": layers, "loss": self.loss.name() });
        if self.naming != Naming::Sequential {
            value["names"] = self.naming.name().into();
        }
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("x")
}

/// `3` for (3, 3), `5x3` otherwise.
pub(crate) fn pair_text((a, b): (usize, usize)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}x{b}")
    }
}

/// The text of one layer (its family's, in its op's file).
pub fn layer_text(layer: &Layer) -> String {
    layer.text_form().text
}

/// `, bias=false` for a bias-free layer, nothing otherwise.
pub(crate) fn bias_text(bias: bool) -> &'static str {
    if bias {
        ""
    } else {
        ", bias=false"
    }
}

/// `bias=true|false` (PyTorch's `bias=False`); true when absent.
fn parse_bias(what: &str, v: Option<&str>) -> Result<bool> {
    match v.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(true),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(Error::Config(format!("{what}: bias={v}: use bias=true or bias=false"))),
    }
}

fn parse_loss(name: &str) -> Result<Loss> {
    match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "cross_entropy" | "ce" | "crossentropy" => Ok(Loss::CrossEntropy),
        "mse" => Ok(Loss::Mse),
        other => Err(Error::Config(format!("unknown loss '{other}'; use cross_entropy or mse"))),
    }
}

fn parse_number(what: &str, s: &str) -> Result<usize> {
    s.trim().parse().map_err(|_| Error::Config(format!("{what}: '{}' is not a whole number", s.trim())))
}

/// `3`, `5x3` or PyTorch's tuple `(5, 3)`
fn parse_pair(what: &str, s: &str) -> Result<(usize, usize)> {
    let s = s.trim();
    let tuple = s.strip_prefix('(').and_then(|t| t.strip_suffix(')'));
    if let Some(inner) = tuple {
        let parts: Vec<&str> = inner.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        return match parts[..] {
            [a, b] => Ok((parse_number(what, a)?, parse_number(what, b)?)),
            [a] => parse_pair(what, a),
            _ => Err(Error::Config(format!("{what}: '{s}' is not a pair such as (3, 1)"))),
        };
    }
    match s.split_once('x') {
        Some((a, b)) => Ok((parse_number(what, a)?, parse_number(what, b)?)),
        None => {
            let v = parse_number(what, s)?;
            Ok((v, v))
        }
    }
}

/// Splits at the commas outside parentheses, trimming each part: `16, k=(3, 1), p=1` is three
/// arguments, `adam,lion(beta2=0.98, wd=0.1)` two optimizers.
pub(crate) fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

/// One layer's arguments as written: `conv2d(16, k=3, p=1)` has the name `conv2d`, one
/// positional argument and two named ones. Each layer family's parser (in its op's file) reads
/// what it takes with [`Args::read`]; an argument it does not take is an error that names it.
pub(crate) struct Args<'a> {
    /// `layer 3 'conv2d(16, k=3)'`, for errors.
    pub what: String,
    /// The layer's name, lower case.
    pub name: String,
    positional: Vec<&'a str>,
    named: Vec<(String, &'a str)>,
}

impl<'a> Args<'a> {
    /// The arguments of `slots` (each a list of names, the first the canonical one), by position
    /// in that order or by any of a slot's names. Every argument must be read: an extra
    /// position, a repeat or a name no slot has is an error naming it. `bias` is taken by name
    /// only (PyTorch's positional order has dilation and groups first).
    pub fn read(&self, slots: &[&[&str]]) -> Result<Vec<Option<&'a str>>> {
        let (what, name) = (&self.what, &self.name);
        let by_position = slots.iter().filter(|names| names[0] != "bias").count();
        if self.positional.len() > by_position {
            return Err(Error::Config(format!(
                "{what}: {} positional arguments, '{name}' takes at most {} ({}); note that PyTorch's in-channel / in-feature argument is not written here",
                self.positional.len(),
                by_position,
                slots.iter().take(by_position).map(|names| names[0]).collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some((k, _)) = self.named.iter().find(|(k, _)| !slots.iter().any(|names| names.contains(&k.as_str()))) {
            let known: Vec<String> = slots.iter().map(|names| names.join("/")).collect();
            return Err(Error::Config(format!(
                "{what}: '{name}' has no argument '{k}' (it takes {}; dilation and groups are not supported)",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        }
        let mut out = Vec::new();
        for (i, names) in slots.iter().enumerate() {
            let by_name: Vec<&str> =
                self.named.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| *v).collect();
            let given = self.positional.get(i).copied().into_iter().chain(by_name).collect::<Vec<_>>();
            if given.len() > 1 {
                return Err(Error::Config(format!("{what}: '{}' is given {} times", names[0], given.len())));
            }
            out.push(given.first().copied());
        }
        Ok(out)
    }

    /// Whether any argument was written.
    pub fn any(&self) -> bool {
        !self.positional.is_empty() || !self.named.is_empty()
    }

    /// Refuses any argument.
    pub fn none(&self) -> Result<()> {
        if self.any() {
            return Err(self.error(&format!("'{}' takes no arguments", self.name)));
        }
        Ok(())
    }

    /// A configuration error about this layer: `layer 3 'linear()': <why>`.
    pub fn error(&self, why: &str) -> Error {
        Error::Config(format!("{}: {why}", self.what))
    }

    /// A required argument (`why` says what to give, e.g. "give the output width, e.g. linear(10)").
    pub fn required(&self, v: Option<&'a str>, why: &str) -> Result<&'a str> {
        v.ok_or_else(|| self.error(why))
    }

    /// A whole number.
    pub fn number(&self, v: &str) -> Result<usize> {
        parse_number(&self.what, v)
    }

    /// `3`, `5x3` or `(5, 3)`.
    pub fn pair(&self, v: &str) -> Result<(usize, usize)> {
        parse_pair(&self.what, v)
    }

    /// An optional pair.
    pub fn pair_or(&self, v: Option<&str>, default: (usize, usize)) -> Result<(usize, usize)> {
        Ok(v.map(|v| self.pair(v)).transpose()?.unwrap_or(default))
    }

    /// `bias=true|false`; true when absent.
    pub fn bias(&self, v: Option<&str>) -> Result<bool> {
        parse_bias(&self.what, v)
    }
}

/// Parses one layer, e.g. `conv2d(16, k=3, p=1)`, by the family that owns its name (`FAMILIES`
/// in mod.rs); `index` names it in errors.
pub fn parse_layer(index: usize, text: &str) -> Result<Layer> {
    let text = text.trim();
    let what = format!("layer {index} '{text}'");
    let (name, args) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| Error::Config(format!("{what}: missing ')'")))?;
            (name.trim().to_ascii_lowercase(), split_top_level(inner).into_iter().filter(|a| !a.is_empty()).collect())
        }
        None => (text.to_ascii_lowercase(), Vec::new()),
    };
    let mut parsed = Args { what, name, positional: Vec::new(), named: Vec::new() };
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => parsed.named.push((k.trim().to_ascii_lowercase(), v.trim())),
            None => parsed.positional.push(a),
        }
    }
    if let Some(layer) = super::FAMILIES.iter().find_map(|family| (family.parse)(&parsed)) {
        return layer;
    }
    let names: Vec<&str> = super::FAMILIES.iter().flat_map(|family| family.names.iter().copied()).collect();
    let (last, rest) = names.split_last().map_or(("", &[][..]), |(last, rest)| (*last, rest));
    Err(parsed.error(&format!("unknown layer '{}'; use {} or {last}", parsed.name, rest.join(", "))))
}

/// The model and the loss the text names (None: it names none).
type Parsed = (ModelSpec, Option<Loss>);

fn parse_lines(text: &str) -> Result<Parsed> {
    let mut input = None;
    let mut naming = None;
    let mut loss = None;
    let mut layers = LayerTokens::default();
    for raw in text.split(['\n', ';']) {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("input") {
            let rest = rest.trim_start_matches([' ', '=', ':']);
            if input.is_some() {
                return Err(Error::Config(format!("'{line}': the model already has an input line; keep one")));
            }
            let shape = rest.split('x').map(|v| parse_number("input shape", v)).collect::<Result<Vec<_>>>()?;
            input = Some(shape);
        } else if let Some(rest) = line.strip_prefix("names ") {
            if naming.is_some() {
                return Err(Error::Config(format!(
                    "'{line}': the model already names its naming; keep one 'names' line"
                )));
            }
            naming = Some(Naming::parse(rest)?);
        } else if let Some(rest) = line.strip_prefix("loss") {
            if loss.is_some() {
                return Err(Error::Config(format!("'{line}': the model already names its loss; keep one 'loss' line")));
            }
            loss = Some(parse_loss(rest.trim_start_matches([' ', '=', ':']))?);
        } else {
            layers.segment(line)?;
        }
    }
    let layers = layers.finish()?;
    let input =
        input.ok_or_else(|| Error::Config("the model description needs an 'input' line, e.g. 'input 1x8x8'".into()))?;
    let naming = naming.unwrap_or_default();
    Ok((ModelSpec { input, layers, loss: loss.unwrap_or(Loss::CrossEntropy), naming }, loss))
}

/// Layers from segments of text, where `residual(...) {` opens a block and `}` closes it (the
/// braces may share a segment with a layer: `residual(shortcut=pad) { conv2d(16, k=3)`).
#[derive(Default)]
struct LayerTokens {
    layers: Vec<Layer>,
    /// a `residual(...)` waits for its `{`
    open_pending: bool,
}

impl LayerTokens {
    fn segment(&mut self, text: &str) -> Result<()> {
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            self.token(&rest[..at])?;
            self.brace(rest.as_bytes()[at] == b'{')?;
            rest = &rest[at + 1..];
        }
        self.token(rest)
    }

    fn token(&mut self, text: &str) -> Result<()> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        if self.open_pending {
            return Err(Error::Config(format!("'{text}': a residual block needs '{{' after residual(...)")));
        }
        let layer = parse_layer(self.layers.len(), text)?;
        self.open_pending = matches!(layer, Layer::Residual(_));
        self.layers.push(layer);
        Ok(())
    }

    fn brace(&mut self, open: bool) -> Result<()> {
        match (open, self.open_pending) {
            (true, true) => self.open_pending = false,
            (true, false) => {
                return Err(Error::Config(
                    "'{' must follow residual(...), e.g. 'residual(shortcut=pad) { ... }'".into(),
                ))
            }
            (false, true) => return Err(Error::Config("residual(...) needs '{' before its layers".into())),
            (false, false) => self.layers.push(Layer::EndResidual),
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Layer>> {
        if self.open_pending {
            return Err(Error::Config("residual(...) needs '{', its layers and '}'".into()));
        }
        Ok(self.layers)
    }
}

fn parse_mlp(rest: &str) -> Result<Parsed> {
    let mut parts = rest.split(':');
    let widths =
        parts.next().unwrap_or("").split('-').map(|w| parse_number("mlp widths", w)).collect::<Result<Vec<_>>>()?;
    if widths.len() < 2 {
        return Err(Error::Config(
            "an MLP needs at least an input and an output width, e.g. mlp:64-128-10:tanh".into(),
        ));
    }
    let mut activation = Activation::Relu;
    let mut loss = None;
    let mut named_activation = None;
    for p in parts {
        if let Some(a) = Activation::parse(p) {
            if let Some(first) = named_activation.replace(p) {
                return Err(Error::Config(format!(
                    "mlp: two activations, '{first}' and '{p}'; an MLP shorthand has one (write the layers out to mix them)"
                )));
            }
            activation = a;
        } else if loss.is_some() {
            return Err(Error::Config(format!("mlp: '{p}' is a second loss; give one")));
        } else {
            loss = Some(parse_loss(p).map_err(|_| {
                Error::Config(format!(
                    "mlp: '{p}' is neither an activation (relu, tanh, ...) nor a loss (cross_entropy, mse)"
                ))
            })?);
        }
    }
    Ok((ModelSpec::mlp(&widths, activation, loss.unwrap_or(Loss::CrossEntropy)), loss))
}

/// A JSON value whose top-level object may not name a key twice (serde_json keeps the last one
/// silently, so `{"loss": "mse", "loss": "cross_entropy"}` would train cross-entropy).
struct UniqueKeys(serde_json::Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<UniqueKeys, M::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: serde_json::Value = map.next_value()?;
                    if object.insert(key.clone(), value).is_some() {
                        return Err(serde::de::Error::custom(format!("the key \"{key}\" is given twice; keep one")));
                    }
                }
                Ok(UniqueKeys(serde_json::Value::Object(object)))
            }
        }
        d.deserialize_map(Visit)
    }
}

fn parse_json(text: &str) -> Result<Parsed> {
    let v: serde_json::Value =
        serde_json::from_str::<UniqueKeys>(text).map_err(|e| Error::Config(format!("model JSON is malformed: {e}")))?.0;
    if let Some(object) = v.as_object() {
        if let Some(k) = object.keys().find(|k| !["input", "layers", "loss", "names"].contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "model JSON has an unknown key \"{k}\"; it takes \"input\", \"layers\", \"loss\" and \"names\""
            )));
        }
    }
    let input = v
        .get("input")
        .and_then(|i| i.as_array())
        .ok_or_else(|| Error::Config("model JSON needs \"input\": an array such as [1, 8, 8]".into()))?
        .iter()
        .map(|d| {
            d.as_u64()
                .map(|d| d as usize)
                .ok_or_else(|| Error::Config(format!("input dimension {d} is not a whole number")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut tokens = LayerTokens::default();
    for (i, l) in v
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| Error::Config("model JSON needs \"layers\": an array of layer strings".into()))?
        .iter()
        .enumerate()
    {
        let text = l
            .as_str()
            .ok_or_else(|| Error::Config(format!("layer {i} must be a string such as \"linear(10)\", not {l}")))?;
        tokens.segment(text)?;
    }
    let layers = tokens.finish()?;
    let loss = match v.get("loss") {
        Some(l) => Some(parse_loss(l.as_str().ok_or_else(|| Error::Config("\"loss\" must be a string".into()))?)?),
        None => None,
    };
    let naming = match v.get("names") {
        Some(n) => Naming::parse(n.as_str().ok_or_else(|| Error::Config("\"names\" must be a string".into()))?)?,
        None => Naming::Sequential,
    };
    Ok((ModelSpec { input, layers, loss: loss.unwrap_or(Loss::CrossEntropy), naming }, loss))
}
