//! `nsid`: RFC 5001. A query that carries the NSID option gets the server's identifier in an
//! NSID option of the answer, whatever the rest of the chain answered. Queries without it are
//! not touched (and so keep the fast path, which reads only queries without options).

pub mod config;

use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{FastQuery, Handler, HandlerFuture, Next, Request};

pub struct Nsid {
    payload: NSIDPayload,
}

impl Handler for Nsid {
    fn name(&self) -> &'static str {
        "nsid"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        let asked = req
            .edns
            .is_some_and(|e| e.options().get(EdnsCode::NSID).is_some());
        if !asked {
            return next.serve(req);
        }
        Box::pin(async move {
            let mut reply = next.serve(req).await?;
            reply
                .edns_options
                .push(EdnsOption::NSID(self.payload.clone()));
            Ok(reply)
        })
    }

    fn passes_fast(&self, _: FastQuery<'_>) -> bool {
        true
    }
}

/// Puts `nsid` into the block being set up.
pub fn setup(cfg: &config::NsidConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let payload =
        NSIDPayload::new(cfg.data.as_bytes().to_vec()).map_err(|e| PluginError::new("nsid", e))?;
    s.handler(Nsid { payload });
    Ok(())
}
