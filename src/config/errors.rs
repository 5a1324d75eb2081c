//! `errors`: log every query the chain failed to answer.
//!
//! ```text
//! errors
//! ```

use crate::corefile::Directive;

use super::{Args, ConfigError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorsConfig {}

pub fn parse(d: &Directive) -> Result<ErrorsConfig, Vec<ConfigError>> {
    let args = Args::new("errors", d);
    args.none().map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let msg = match p.name.text.as_str() {
            "consolidate" => "property 'consolidate' is not supported by clusterdns yet",
            "stacktrace" => {
                "property 'stacktrace' is not supported (clusterdns has no Go stack traces to print)"
            }
            other => {
                errors.push(ConfigError::new(
                    &p.name.pos,
                    format!(
                        "errors: unknown property '{other}'; expected consolidate or stacktrace"
                    ),
                ));
                continue;
            }
        };
        errors.push(ConfigError::new(&p.name.pos, format!("errors: {msg}")));
    }
    if errors.is_empty() {
        Ok(ErrorsConfig {})
    } else {
        Err(errors)
    }
}
