//! The emulator's check of AWS Signature Version 4 headers: present and well
//! formed (it has no secret to verify the signature with). The region of the
//! credential scope says which emulated region a request is for, so one
//! listener serves them all, just as the SDK addresses them.

use axum::http::HeaderMap;

/// The region a well-formed SigV4 `Authorization` names, or what is wrong.
pub fn signed_region(headers: &HeaderMap) -> Result<String, String> {
    let auth = headers
        .get("authorization")
        .ok_or("missing Authorization header (requests must be signed with SigV4)")?
        .to_str()
        .map_err(|_| "Authorization header is not visible ASCII")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization must use AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(format!("unexpected Authorization part {part:?}")),
        }
    }
    let credential = credential.ok_or("Authorization lacks Credential")?;
    let signed_headers = signed_headers.ok_or("Authorization lacks SignedHeaders")?;
    let signature = signature.ok_or("Authorization lacks Signature")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Err(format!(
            "Credential scope {credential:?} is not key/date/region/service/aws4_request"
        ));
    };
    if key.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || *service != "bedrock"
        || *terminator != "aws4_request"
    {
        return Err(format!("malformed Credential scope {credential:?}"));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature must be 64 hex digits".into());
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    for needed in ["host", "x-amz-date"] {
        if !signed.contains(&needed) {
            return Err(format!("SignedHeaders must include {needed}"));
        }
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing X-Amz-Date header")?;
    let well_formed = amz_date.len() == 16
        && amz_date.get(..8) == Some(*date)
        && amz_date.as_bytes().get(8) == Some(&b'T')
        && amz_date.ends_with('Z');
    if !well_formed {
        return Err(format!(
            "X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ of the scope's date"
        ));
    }
    Ok((*region).to_string())
}
