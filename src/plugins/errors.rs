//! `errors`: logs every query the rest of the chain failed on, as CoreDNS does:
//! `[ERROR] plugin/errors: 2 name. A: what went wrong` (2 is SERVFAIL's code).

use crate::chain::{Handler, HandlerFuture, Next, Request};

pub struct Errors;

impl Handler for Errors {
    fn name(&self) -> &'static str {
        "errors"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let result = next.serve(req).await;
            if let Err(e) = &result {
                tracing::error!(
                    "plugin/errors: 2 {} {}: {e}",
                    req.query.original().name(),
                    req.query.query_type()
                );
            }
            result
        })
    }
}
