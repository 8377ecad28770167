//! Command-line values paired with proto enums.

use clap::ValueEnum;

/// A flag type paired one to one with a proto enum: a flag value names a
/// proto value, and a proto value prints as its flag value, so the words an
/// operator types and reads are the same and cannot drift apart.
macro_rules! flag_enum {
    ($(#[$meta:meta])* $flag:ident <=> $proto:ident { $($(#[$vmeta:meta])* $variant:ident = $proto_variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
        pub enum $flag {
            $($(#[$vmeta])* $variant),+
        }

        impl From<$flag> for $proto {
            fn from(value: $flag) -> Self {
                match value {
                    $($flag::$variant => $proto::$proto_variant),+
                }
            }
        }

        impl From<$proto> for $flag {
            fn from(value: $proto) -> Self {
                match value {
                    $($proto::$proto_variant => $flag::$variant),+
                }
            }
        }
    };
}

pub(crate) use flag_enum;

/// How a flag value is spelled on the command line.
pub fn label<E: ValueEnum>(value: E) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
