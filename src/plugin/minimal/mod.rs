//! `minimal`: a positive answer (NOERROR with records in the answer section) goes out without
//! its authority and additional sections, which a stub resolver never reads: smaller answers,
//! fewer truncations. NXDOMAIN, NODATA and referrals keep theirs (the SOA a resolver caches a
//! negative answer by, the glue a referral needs). The OPT record is the server's and stays.

pub mod config;

use hickory_proto::op::ResponseCode;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{FastAnswer, FastQuery, Handler, HandlerFuture, Next, Reply, Request};

pub struct Minimal;

fn positive(reply: &Reply) -> bool {
    reply.rcode == ResponseCode::NoError && !reply.answers.iter().all(|s| s.is_empty())
}

impl Handler for Minimal {
    fn name(&self) -> &'static str {
        "minimal"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut reply = next.serve(req).await?;
            if positive(&reply) {
                reply.authority.clear();
                reply.additionals.clear();
            }
            Ok(reply)
        })
    }

    fn passes_fast(&self, _: FastQuery<'_>) -> bool {
        true
    }

    /// A fast answer is sent as it is where there is nothing to take out of it.
    fn keeps_fast(&self, answer: &FastAnswer) -> bool {
        match answer {
            FastAnswer::Answer {
                authority,
                additionals,
                ..
            } => authority.is_none() && additionals.is_none(),
            FastAnswer::Negative(..) => true,
            FastAnswer::Kept { reply, .. } => {
                !positive(reply) || (reply.authority.is_empty() && reply.additionals.is_empty())
            }
        }
    }
}

/// Puts `minimal` into the block being set up.
pub fn setup(_: &config::MinimalConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Minimal);
    Ok(())
}
