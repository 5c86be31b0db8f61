//! ApiVersions: derived from the router's table of supported APIs, plus Skein's features ([`crate::features`]),
//! which clients read from v3 on (the finalized `transaction.version` 2 turns on Transactions V2, KIP-890).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::protocol::StrBytes;
use skein_protocol::{RequestFrame, encode_response};

use crate::features::{FEATURES, FEATURES_EPOCH};
use crate::metrics::ErrorCodes;
use crate::router::{Outcome, SUPPORTED_APIS};

/// The highest ApiVersions version Skein speaks.
const MAX_VERSION: i16 = 4;
fn response(error: Option<ResponseError>) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max)
        })
        .collect();
    let supported = FEATURES
        .iter()
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let finalized = FEATURES
        .iter()
        .filter(|f| f.finalized > 0)
        .map(|f| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version_level(f.finalized)
                .with_max_version_level(f.finalized)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_api_keys(api_keys)
        .with_supported_features(supported)
        .with_finalized_features_epoch(FEATURES_EPOCH)
        .with_finalized_features(finalized)
}

/// Answers ApiVersions. Whatever the request version, the response header is v0 (no tagged fields). A version
/// newer than Skein speaks gets a v0 answer with UNSUPPORTED_VERSION and the supported ranges, so the client
/// retries with a version it finds there.
pub(crate) fn handle(frame: &RequestFrame) -> Outcome {
    let (version, body) = if frame.api_version > MAX_VERSION || frame.api_version < 0 {
        (0, response(Some(ResponseError::UnsupportedVersion)))
    } else {
        let mut buf: Bytes = frame.body.clone();
        match ApiVersionsRequest::decode(&mut buf, frame.api_version) {
            Ok(_) => (frame.api_version, response(None)),
            Err(_) => (frame.api_version, response(Some(ResponseError::InvalidRequest))),
        }
    };
    match encode_response(frame.correlation_id, 0, &body, version) {
        Ok(frame) => Outcome::Respond { frame, error_codes: body.error_codes() },
        Err(err) => Outcome::Close(format!("could not encode ApiVersions response: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(version: i16, body: Bytes) -> RequestFrame {
        RequestFrame { api_key: 18, api_version: version, correlation_id: 9, client_id: None, body }
    }

    fn decode(outcome: Outcome, version: i16) -> ApiVersionsResponse {
        let Outcome::Respond { frame: bytes, .. } = outcome else { panic!("expected a response") };
        // length(4) + correlation id(4), header v0
        let mut body = bytes.slice(8..);
        ApiVersionsResponse::decode(&mut body, version).expect("decode")
    }

    #[test]
    fn unknown_version_gets_v0_unsupported_with_ranges() {
        let response = decode(handle(&frame(99, Bytes::new())), 0);
        assert_eq!(response.error_code, 35);
        assert!(response.api_keys.iter().any(|k| k.api_key == 18 && k.max_version == MAX_VERSION));
    }

    #[test]
    fn v0_request_lists_supported_apis() {
        let response = decode(handle(&frame(0, Bytes::new())), 0);
        assert_eq!(response.error_code, 0);
        assert_eq!(response.api_keys.len(), SUPPORTED_APIS.len());
        let produce = response.api_keys.iter().find(|k| k.api_key == 0).expect("produce listed");
        assert_eq!(produce.min_version, 0);
    }
}
