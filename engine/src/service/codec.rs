//! The protobuf codec of the master service: prost's, except that a request that does not
//! decode is answered INVALID_ARGUMENT naming the message it should have been (prost's codec
//! says INTERNAL, which reads as a fault of the engine).

use prost::Message;
use std::marker::PhantomData;
use tonic::codec::{Codec as TonicCodec, DecodeBuf, Decoder as TonicDecoder};
use tonic::Status;

/// Encodes `T` and decodes `U` with prost.
#[derive(Debug, Clone)]
pub struct Codec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec {
            _types: PhantomData,
        }
    }
}

impl<T, U> TonicCodec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder { _type: PhantomData }
    }
}

/// Decodes `U`; a malformed message is INVALID_ARGUMENT.
#[derive(Debug)]
pub struct Decoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> TonicDecoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| {
            let full = std::any::type_name::<U>();
            let name = full.rsplit("::").next().unwrap_or(full);
            Status::invalid_argument(format!("malformed protobuf message ({name}): {e}"))
        })
    }
}
