//! foca's wire codec, implemented with the same bincode configuration as the rest of the
//! wire format. Decoding is bounded (see `wire::codec`) and never panics.

use bytes::{Buf, BufMut};
use foca::{Header, Member};

use crate::membership::member::MemberId;
use crate::wire::codec::{decode_prefix_of, encode_header, WireError};

/// The codec handed to foca.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwimCodec;

impl foca::Codec<MemberId> for SwimCodec {
    type Error = WireError;

    fn encode_header(
        &mut self,
        header: &Header<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), WireError> {
        let bytes = encode_header(header)?;
        if buf.remaining_mut() < bytes.len() {
            return Err(WireError::Malformed("no room for the SWIM header".into()));
        }
        buf.put_slice(&bytes);
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<MemberId>, WireError> {
        let (header, used) = decode_prefix_of(buf.chunk())?;
        buf.advance(used);
        Ok(header)
    }

    fn encode_member(
        &mut self,
        member: &Member<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), WireError> {
        let bytes = encode_header(member)?;
        // foca requires that nothing is written when the item does not fit.
        if buf.remaining_mut() < bytes.len() {
            return Err(WireError::Malformed("no room for the SWIM member".into()));
        }
        buf.put_slice(&bytes);
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<MemberId>, WireError> {
        let (member, used) = decode_prefix_of(buf.chunk())?;
        buf.advance(used);
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use foca::Codec;
    use proptest::prelude::*;

    #[test]
    fn members_round_trip() {
        let m = Member::alive(MemberId {
            id: Keypair::generate().unwrap().node_id(),
            generation: 5,
            name: "x".into(),
            addrs: vec!["127.0.0.1:1".parse().unwrap()],
        });
        let mut buf = Vec::new();
        SwimCodec.encode_member(&m, &mut buf).unwrap();
        buf.extend_from_slice(b"rest");
        let mut slice = &buf[..];
        let back = SwimCodec.decode_member(&mut slice).unwrap();
        assert_eq!(back, m);
        assert_eq!(slice, b"rest");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SwimCodec.decode_header(&bytes[..]);
            let _ = SwimCodec.decode_member(&bytes[..]);
        }
    }
}
