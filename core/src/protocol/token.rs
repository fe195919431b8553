//! The grant token and the fence inside it.

use super::{Error, TOKEN_LEN};

/// The fence of a grant token: its first 16 hex characters as a big-endian u64.
///
/// The token must be exactly 32 lowercase hex characters; anything else is
/// [`Error::InvalidArgument`] (which never repeats the token).
pub fn fence_from_token(token: &str) -> Result<u64, Error> {
    if token.len() != TOKEN_LEN
        || !token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(Error::InvalidArgument(format!(
            "a token is {TOKEN_LEN} lowercase hex characters"
        )));
    }
    // The check above makes the slice boundary and the parse infallible;
    // still no unwrap on a path that input reaches.
    token
        .get(..16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| Error::InvalidArgument("token has no fence".into()))
}
