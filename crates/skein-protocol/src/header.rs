//! Request header decode and response framing.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::frame::FrameError;

/// A request whose header has been decoded; the body is left for the handler, which knows its type.
#[derive(Debug, Clone)]
pub struct RequestFrame {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: Bytes,
}

/// Decodes the request header of one frame (without its length prefix).
///
/// Unknown api keys still decode (with header v1) so the caller can decide what to answer; the header version of a
/// known key follows the request version, and an out-of-range version falls back to the version rules of the
/// nearest valid version, which is what clients expect when a newer version is refused.
pub fn decode_request_frame(mut frame: Bytes) -> Result<RequestFrame, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::MalformedHeader(format!("{} bytes is shorter than a request header", frame.len())));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let header_version = match ApiKey::try_from(api_key) {
        Ok(key) => {
            let range = key.valid_versions();
            key.request_header_version(api_version.clamp(range.min, range.max))
        }
        Err(()) => 1,
    };
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|err| FrameError::MalformedHeader(err.to_string()))?;
    Ok(RequestFrame {
        api_key,
        api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|id| id.to_string()),
        body: frame,
    })
}

/// The codec failed to encode a response (a value out of range for the version, say).
#[derive(Debug, thiserror::Error)]
#[error("response encoding failed: {0}")]
pub struct EncodeError(String);

/// Encodes a complete response frame: length prefix, response header at `header_version`, then the body at `version`.
pub fn encode_response<M: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &M,
    version: i16,
) -> Result<Bytes, EncodeError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header.encode(&mut buf, header_version).map_err(|err| EncodeError(err.to_string()))?;
    body.encode(&mut buf, version).map_err(|err| EncodeError(err.to_string()))?;
    let length = i32::try_from(buf.len() - 4).map_err(|_| EncodeError("response over 2 GiB".into()))?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn encode_header(key: i16, version: i16, header_version: i16) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test-client")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, header_version).expect("encode header");
        buf.put_slice(b"body");
        buf.freeze()
    }

    #[test]
    fn decodes_flexible_and_non_flexible_headers() {
        let frame = decode_request_frame(encode_header(18, 3, 2)).expect("v2 header");
        assert_eq!((frame.api_key, frame.api_version, frame.correlation_id), (18, 3, 42));
        assert_eq!(frame.client_id.as_deref(), Some("test-client"));
        assert_eq!(&frame.body[..], b"body");

        let frame = decode_request_frame(encode_header(3, 1, 1)).expect("v1 header");
        assert_eq!((frame.api_key, frame.api_version), (3, 1));
        assert_eq!(&frame.body[..], b"body");
    }

    #[test]
    fn rejects_truncated_headers() {
        assert!(decode_request_frame(Bytes::from_static(&[0, 18, 0])).is_err());
        // Claims a 100-byte client id but carries none.
        let mut buf = BytesMut::new();
        buf.put_i16(18);
        buf.put_i16(0);
        buf.put_i32(1);
        buf.put_i16(100);
        assert!(decode_request_frame(buf.freeze()).is_err());
    }

    #[test]
    fn response_frame_has_correct_length_prefix() {
        let body = kafka_protocol::messages::ApiVersionsResponse::default();
        let frame = encode_response(7, 0, &body, 0).expect("encode");
        let length = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(length as usize, frame.len() - 4);
        assert_eq!(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]), 7);
    }
}
