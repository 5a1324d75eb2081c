//! `header`: sets or clears the `aa`, `ra` and `rd` bits of every response (and, with `query`
//! rules, the `rd` bit the rest of the chain sees: what `forward` asks upstream with), in the
//! order the rules are written.

pub mod config;

use config::{Flag, Rule};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{Handler, HandlerFuture, Next, Reply, Request};

pub struct Header {
    query: Vec<Rule>,
    response: Vec<Rule>,
}

fn apply(reply: &mut Reply, rules: &[Rule]) {
    for r in rules {
        match r.flag {
            Flag::Aa => reply.authoritative = r.state,
            Flag::Ra => reply.recursion_available = r.state,
            Flag::Rd => reply.recursion_desired = Some(r.state),
        }
    }
}

impl Handler for Header {
    fn name(&self) -> &'static str {
        "header"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            // Only RD means anything to the handlers below; AA and RA in a query are ignored.
            let rd = self
                .query
                .iter()
                .filter(|r| r.flag == Flag::Rd)
                .fold(req.recursion_desired, |_, r| r.state);
            let mut reply = if rd == req.recursion_desired {
                next.serve(req).await?
            } else {
                let inner = Request {
                    recursion_desired: rd,
                    ..*req
                };
                let mut reply = next.serve(&inner).await?;
                // The response echoes the RD the chain saw, as CoreDNS's does.
                reply.recursion_desired.get_or_insert(rd);
                reply
            };
            apply(&mut reply, &self.response);
            Ok(reply)
        })
    }
}

/// Puts `header` into the block being set up.
pub fn setup(cfg: &config::HeaderConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Header {
        query: cfg.query.clone(),
        response: cfg.response.clone(),
    });
    Ok(())
}
