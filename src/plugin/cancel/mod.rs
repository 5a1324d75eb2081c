//! `cancel`: a query the rest of the chain has not answered within the timeout is given up
//! (the work under it, an upstream exchange say, is dropped) and answered SERVFAIL, so that a
//! slow upstream cannot hold a query, and what it costs, longer than the client waits.

pub mod config;

use std::time::Duration;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{FastQuery, Handler, HandlerError, HandlerFuture, Next, Request};

pub struct Cancel {
    timeout: Duration,
}

impl Handler for Cancel {
    fn name(&self) -> &'static str {
        "cancel"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, next.serve(req)).await {
                Ok(answered) => answered,
                Err(_) => Err(HandlerError::failed(
                    "cancel",
                    format!("no answer within {:?}; cancelled", self.timeout),
                )),
            }
        })
    }

    /// A fast answer is ready at once: nothing to cancel.
    fn passes_fast(&self, _: FastQuery<'_>) -> bool {
        true
    }
}

/// Puts `cancel` into the block being set up.
pub fn setup(cfg: &config::CancelConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Cancel {
        timeout: cfg.timeout,
    });
    Ok(())
}
