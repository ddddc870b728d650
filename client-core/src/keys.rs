//! What the app holds besides tables: the operator's verifying key it pins,
//! and in threshold mode the account's secret. Each constructor checks what
//! an app or a binding passes in and refuses it with the core's words.

use blindmatch_protocol::threshold::{AccountSecret, SyntheticRate};
use blindmatch_protocol::{Error as ProtocolError, OperatorVerifyingKey};
use rand_core::CryptoRng;

use crate::Error;

/// The operator's verifying key from its 32 bytes.
///
/// # Errors
/// [`Error::Input`] for another length, an encoding that is not a point,
/// or a weak (small-order) key.
pub fn operator_key(bytes: &[u8]) -> Result<OperatorVerifyingKey, Error> {
    OperatorVerifyingKey::from_bytes(bytes).map_err(Error::Input)
}

/// The operator's verifying key from 64 hex digits, as `blindmatch-server
/// keygen --signing` prints it and writes it to its `.pub` file
/// (surrounding white space is ignored).
///
/// # Errors
/// [`Error::Input`] for text that is not 64 hex digits, or as
/// [`operator_key`].
pub fn operator_key_from_hex(hex: &str) -> Result<OperatorVerifyingKey, Error> {
    let bytes = hex::decode(hex.trim())
        .map_err(|_| Error::Input(ProtocolError::InvalidOperatorKey("not 64 hex digits")))?;
    operator_key(&bytes)
}

/// A new account secret for `account_id` (1 to 64 bytes, the platform's
/// opaque name for the account) with synthetic rate `synthetic_rate` (the
/// probability, 0 to 1, that a voucher is synthetic; kept secret), from a
/// fresh seed.
///
/// # Errors
/// [`Error::Account`] for an id outside 1 to 64 bytes or a rate that is not
/// a probability.
pub fn generate_account<R: CryptoRng + ?Sized>(
    account_id: &[u8],
    synthetic_rate: f64,
    rng: &mut R,
) -> Result<AccountSecret, Error> {
    let rate = SyntheticRate::try_from_probability(synthetic_rate).map_err(Error::Account)?;
    AccountSecret::generate(account_id, rate, rng).map_err(Error::Account)
}

/// An account secret saved with [`AccountSecret::encode`] (SPEC 14.1).
///
/// # Errors
/// [`Error::Account`] for a damaged or foreign one.
pub fn decode_account(saved: &[u8]) -> Result<AccountSecret, Error> {
    AccountSecret::decode(saved).map_err(Error::Account)
}
