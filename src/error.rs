//! One error type for the whole library. Every variant says what went wrong and how to fix it.

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with messages meant for the person running the program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter at all.
    #[error(
        "no GPU adapter found ({backends}); install a GPU driver (on Linux without a GPU, \
         Mesa's software Vulkan driver works: `apt-get install mesa-vulkan-drivers`), \
         or on the web use a browser with WebGPU enabled"
    )]
    NoAdapter {
        /// The backends that were searched.
        backends: String,
    },
    /// An adapter was asked for by name and none matched.
    #[error("no GPU adapter matches '{wanted}'; available: {available}; set ADAHESSIAN_ADAPTER to part of one of these names or unset it")]
    AdapterNotFound {
        /// The requested substring.
        wanted: String,
        /// Names of the adapters that exist.
        available: String,
    },
    /// The adapter refused the device request.
    #[error("the GPU adapter '{adapter}' could not open a device: {reason}")]
    DeviceRequest {
        /// Adapter name.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },
    /// A model, batch or data set does not fit one of WebGPU's default device limits.
    #[error("{what} needs {needed} bytes but the device limit {limit_name} is {limit}; {fix}")]
    LimitExceeded {
        /// What was being allocated.
        what: String,
        /// The amount needed.
        needed: u64,
        /// The limit's name in the WebGPU spec.
        limit_name: &'static str,
        /// The limit's value.
        limit: u64,
        /// How to get under it.
        fix: &'static str,
    },
    /// Shapes that do not fit together.
    #[error("shape error: {0}")]
    Shape(String),
    /// A hyper-parameter or option outside its valid range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Malformed or inconsistent data.
    #[error("data error: {0}")]
    Data(String),
    /// A loss or gradient became NaN or infinite.
    #[error("{what} is not finite ({value}) at step {step}; lower the learning rate or enable gradient clipping")]
    NonFinite {
        /// The quantity.
        what: &'static str,
        /// Its value.
        value: f32,
        /// The optimizer step at which it was seen.
        step: u64,
    },
    /// The training loop stopped because its observer asked it to (Ctrl-C on the command line).
    #[error("interrupted (Ctrl-C or SIGTERM)")]
    Interrupted {
        /// The last step taken.
        step: u64,
    },
    /// wgpu reported an error (a bug in this library if it ever shows up).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// Reading a buffer back from the GPU failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// File system errors, with the path.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}
