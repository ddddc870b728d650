//! Submitting as a well-behaved client does when the server sheds load.

use std::time::{Duration, Instant};

use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_proto::v1::{SubmitRequest, SubmitResponse};
use tonic::transport::Channel;

/// What one submission came to.
pub struct Admitted {
    /// The acknowledgement.
    pub response: SubmitResponse,
    /// The time the accepted try took (receipt to acknowledgement, as the
    /// client sees it).
    pub took: Duration,
    /// Tries refused first with RESOURCE_EXHAUSTED and a retry hint (the
    /// server's in-flight budget was full).
    pub refused: u32,
}

/// Sends `req`, and sends it again after the server's hint
/// (`grpc-retry-pushback-ms`) for as long as the server refuses it for
/// memory, as `blindmatch-client` does. Any other failure is returned.
///
/// # Errors
/// The first status that is not such a refusal.
pub async fn submit_admitted(
    client: &mut VoucherServiceClient<Channel>,
    req: SubmitRequest,
) -> Result<Admitted, tonic::Status> {
    let mut refused = 0;
    loop {
        // The copy for this try is made before the clock starts: the time is
        // the server's and the transport's, not the client's memcpy.
        let attempt = req.clone();
        let t = Instant::now();
        match client.submit(attempt).await {
            Ok(r) => {
                return Ok(Admitted {
                    response: r.into_inner(),
                    took: t.elapsed(),
                    refused,
                });
            }
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                let Some(ms) = s
                    .metadata()
                    .get("grpc-retry-pushback-ms")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                else {
                    return Err(s);
                };
                refused += 1;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(s) => return Err(s),
        }
    }
}
