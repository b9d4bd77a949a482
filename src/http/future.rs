//! The future a [`RateLimit`](super::RateLimit) service returns.

use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::headers::Fields;

pin_project! {
    /// The response of a [`RateLimit`](super::RateLimit) service: the inner service's, with the
    /// rate-limit headers added, or the layer's own refusal.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Passed {
            #[pin]
            future: F,
            fields: Option<Fields>,
        },
        Refused {
            response: Option<Box<Response<Full<Bytes>>>>,
        },
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's future; `fields` go on its response.
    pub(crate) fn passed(future: F, fields: Fields) -> Self {
        ResponseFuture {
            kind: Kind::Passed {
                future,
                fields: Some(fields),
            },
        }
    }

    /// A response ready now.
    pub(crate) fn refused(response: Box<Response<Full<Bytes>>>) -> Self {
        ResponseFuture {
            kind: Kind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passed { future, fields } => {
                let mut response = ready!(future.poll(cx))?.map(ResponseBody::inner);
                if let Some(fields) = fields.take() {
                    fields.write(response.headers_mut());
                }
                Poll::Ready(Ok(response))
            }
            KindProj::Refused { response } => {
                let response = response
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(response.map(ResponseBody::refusal)))
            }
        }
    }
}
