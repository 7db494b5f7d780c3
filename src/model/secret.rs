//! Secrets that must never reach a log: their `Debug` and `Display` say
//! "[redacted]", and only `expose` gives the value, at the one place that
//! needs it; and the credentials a request presents, made of them.

use std::fmt;

macro_rules! secret {
    ($name:ident, $what:literal) => {
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($what, "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret!(Password, "Password");
secret!(Token, "Token");

/// What a request presented in its `Authorization` header (or gRPC
/// metadata), parsed by the transport.
pub enum Credentials {
    Bearer(Token),
    Basic(String, Password),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_format() {
        let p = Password::new("hunter2");
        let t = Token::new("abc123");
        let shown = format!("{p} {p:?} {t} {t:?} {:?}", Some(&t));
        assert!(!shown.contains("hunter2") && !shown.contains("abc123"), "{shown}");
        assert_eq!(p.expose(), "hunter2");
    }
}
