//! The length prefix in front of every Kafka request.

/// Why a frame was refused. Either way the connection that sent it is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame length {0} is not positive")]
    NonPositiveLength(i32),
    #[error("frame length {length} exceeds socket.request.max.bytes ({max})")]
    TooLarge { length: i32, max: usize },
    #[error("request header is malformed: {0}")]
    MalformedHeader(String),
}

/// Validates a big-endian `i32` length prefix against `max` before the body is allocated.
pub fn check_frame_length(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    let Ok(length_usize) = usize::try_from(length) else {
        return Err(FrameError::NonPositiveLength(length));
    };
    if length_usize == 0 {
        return Err(FrameError::NonPositiveLength(length));
    }
    if length_usize > max {
        return Err(FrameError::TooLarge { length, max });
    }
    Ok(length_usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lengths_within_limit() {
        assert_eq!(check_frame_length(10i32.to_be_bytes(), 100), Ok(10));
        assert_eq!(check_frame_length(100i32.to_be_bytes(), 100), Ok(100));
    }

    #[test]
    fn rejects_zero_negative_and_oversized_lengths() {
        assert_eq!(check_frame_length(0i32.to_be_bytes(), 100), Err(FrameError::NonPositiveLength(0)));
        assert_eq!(check_frame_length((-5i32).to_be_bytes(), 100), Err(FrameError::NonPositiveLength(-5)));
        assert_eq!(
            check_frame_length(i32::MAX.to_be_bytes(), 104_857_600),
            Err(FrameError::TooLarge { length: i32::MAX, max: 104_857_600 })
        );
    }
}
