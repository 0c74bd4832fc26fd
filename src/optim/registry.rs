//! The list of optimizers, and everything derived from it: [`OptimizerConfig`] (one variant per
//! method), the one name parser (`adam`, `adamw(lr=3e-4, weight_decay=0.1)`) that the command
//! line, the web facade and the compare report share, and the optimizer shader module's source.
//!
//! A method is registered by ONE line in the `methods!` list of `optim/mod.rs`; everything
//! else about it lives in its own file (see [`super::method`]).

use super::method::Field;
use super::OptimizerConfig;
use crate::error::{Error, Result};

/// Declares each method's module and generates [`OptimizerConfig`] and the lists derived from it.
macro_rules! methods {
    ($($variant:ident($config:ident) in $module:ident),+ $(,)?) => {
        $(mod $module; pub use $module::$config;)+

        /// The optimizer and its hyper-parameters: one variant per registered method.
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[allow(missing_docs)]
        pub enum OptimizerConfig {
            $($variant($config),)+
        }

        $(impl From<$config> for OptimizerConfig {
            fn from(c: $config) -> Self {
                OptimizerConfig::$variant(c)
            }
        })+

        impl OptimizerConfig {
            /// The method behind the configuration.
            pub fn method(&self) -> &dyn $crate::optim::method::Method {
                match self {
                    $(OptimizerConfig::$variant(c) => c,)+
                }
            }

            /// The method behind the configuration, to change settings.
            pub fn method_mut(&mut self) -> &mut dyn $crate::optim::method::Method {
                match self {
                    $(OptimizerConfig::$variant(c) => c,)+
                }
            }

            /// Every name the parser accepts with its configuration, canonical names first.
            pub fn presets() -> Vec<(&'static str, OptimizerConfig)> {
                let mut all = Vec::new();
                use $crate::optim::method::Registered;
                $(all.extend($config::PRESETS.iter().map(|(name, make)| (*name, OptimizerConfig::$variant(make()))));)+
                all
            }
        }

        /// Every method's WGSL, appended to the optimizer shader module.
        pub(crate) const METHOD_WGSL: &[&str] = &[$(<$config as $crate::optim::method::Registered>::WGSL),+];
        /// Every method's update entry points.
        pub(crate) const METHOD_KERNELS: &[&[&str]] = &[$(<$config as $crate::optim::method::Registered>::KERNELS),+];
    };
}

impl OptimizerConfig {
    /// A short name: sgd, adam, adamw, adahessian, sophia-h, ...
    pub fn name(&self) -> &'static str {
        self.method().name()
    }

    /// The names [`OptimizerConfig::parse`] accepts, for messages and menus.
    pub fn names() -> Vec<&'static str> {
        Self::presets().into_iter().map(|(n, _)| n).collect()
    }

    /// The default configuration for a name from [`OptimizerConfig::names`].
    pub fn default_for(name: &str) -> Result<OptimizerConfig> {
        let key = name.trim().to_ascii_lowercase();
        Self::presets().into_iter().find(|(n, _)| *n == key).map(|(_, c)| c).ok_or_else(|| {
            Error::Config(format!("unknown optimizer '{}'; use one of {}", name.trim(), Self::names().join(", ")))
        })
    }

    /// Parses `name` or `name(key=value, ...)`, e.g. `adamw(lr=3e-4, beta2=0.95)`: the method's
    /// published defaults with those settings changed, validated.
    pub fn parse(text: &str) -> Result<OptimizerConfig> {
        let text = text.trim();
        let (name, settings) = match text.split_once('(') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix(')').ok_or_else(|| {
                    Error::Config(format!("'{text}': settings go in parentheses, e.g. adam(lr=0.01, beta2=0.99)"))
                })?;
                (name, inner)
            }
            None => (text, ""),
        };
        let mut c = OptimizerConfig::default_for(name)?;
        for pair in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("'{pair}' in '{text}': settings are key=value, e.g. lr=0.01")))?;
            c.set(key.trim(), value.trim())?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Splits a comma-separated list of [`OptimizerConfig::parse`] texts (commas inside
    /// parentheses belong to the settings), dropping empty items.
    pub fn split_list(text: &str) -> Vec<&str> {
        crate::nn::text::split_top_level(text).into_iter().filter(|s| !s.is_empty()).collect()
    }

    /// Parses a comma-separated list of [`OptimizerConfig::parse`] texts.
    pub fn parse_list(text: &str) -> Result<Vec<OptimizerConfig>> {
        Self::split_list(text).into_iter().map(OptimizerConfig::parse).collect()
    }

    /// The names of the method's settings, lr first.
    pub fn setting_names(&self) -> Vec<&'static str> {
        let mut c = *self;
        c.method_mut().fields().into_iter().map(|(k, _)| k).collect()
    }

    /// Whether the method has a setting of that name.
    pub fn has_setting(&self, key: &str) -> bool {
        self.setting_names().contains(&key)
    }

    /// Sets one hyper-parameter by name (not validated: call [`OptimizerConfig::validate`]).
    /// A name the method does not have is an error that lists the ones it has.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let name = self.name();
        let names = self.setting_names();
        let mut fields = self.method_mut().fields();
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some((k, field)) => field.set(k, value),
            None => Err(Error::Config(format!("{name} has no setting '{key}'; its settings are {}", names.join(", ")))),
        }
    }

    /// Every setting and its value, as a JSON object (lr first).
    pub fn settings_json(&self) -> serde_json::Value {
        let mut c = *self;
        let fields: serde_json::Map<String, serde_json::Value> =
            c.method_mut().fields().into_iter().map(|(k, f): (&str, Field<'_>)| (k.to_string(), f.json())).collect();
        serde_json::Value::Object(fields)
    }

    /// The text [`OptimizerConfig::parse`] reads back into this configuration.
    pub fn to_text(&self) -> String {
        let base = OptimizerConfig::default_for(self.name()).ok();
        let mine = self.settings_json();
        let theirs = base.map(|b| b.settings_json());
        let changed: Vec<String> = mine
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| theirs.as_ref().and_then(|t| t.get(k.as_str())) != Some(v))
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                serde_json::Value::Null => format!("{k}=none"),
                other => format!("{k}={other}"),
            })
            .collect();
        if changed.is_empty() {
            self.name().to_string()
        } else {
            format!("{}({})", self.name(), changed.join(", "))
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        let mut c = *self;
        *c.method_mut().lr_mut()
    }

    /// A copy with another learning rate (for sweeps and schedules).
    pub fn with_lr(mut self, lr: f32) -> OptimizerConfig {
        *self.method_mut().lr_mut() = lr;
        self
    }

    /// Whether the method needs Hessian-vector products.
    pub fn uses_curvature(&self) -> bool {
        self.method().curvature().is_some()
    }

    /// Checks every hyper-parameter's range; the message names the parameter and the range.
    pub fn validate(&self) -> Result<()> {
        self.method().validate()
    }
}
