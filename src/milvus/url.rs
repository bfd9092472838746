//! `milvus://HOST:PORT/COLLECTION`: where a Milvus collection lives.

use std::fmt;
use std::str::FromStr;

use super::MilvusError;

/// The scheme every Milvus address starts with.
pub const SCHEME: &str = "milvus://";

/// A Milvus collection's address: `milvus://HOST:PORT/COLLECTION`.
///
/// ```
/// use fiq::milvus::MilvusUrl;
/// let url: MilvusUrl = "milvus://127.0.0.1:19530/shop".parse().unwrap();
/// assert_eq!((url.host(), url.port(), url.collection()), ("127.0.0.1", 19530, "shop"));
/// assert_eq!(url.endpoint(), "http://127.0.0.1:19530");
/// assert!("milvus://host/shop".parse::<MilvusUrl>().is_err()); // no port
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MilvusUrl {
    host: String,
    port: u16,
    collection: String,
}

impl MilvusUrl {
    /// Whether `text` is meant as a Milvus address (starts with `milvus://`), whether or not it parses.
    pub fn is_milvus(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port (gRPC).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The gRPC endpoint, `http://HOST:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The same server, another collection.
    pub fn with_collection(&self, collection: &str) -> Result<MilvusUrl, MilvusError> {
        format!("{SCHEME}{}:{}/{collection}", self.host, self.port).parse()
    }
}

impl fmt::Display for MilvusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}:{}/{}", self.host, self.port, self.collection)
    }
}

impl FromStr for MilvusUrl {
    type Err = MilvusError;

    fn from_str(text: &str) -> Result<MilvusUrl, MilvusError> {
        let bad = |reason: &str| MilvusError::BadUrl {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it must start with milvus://"))?;
        let (authority, collection) = rest
            .split_once('/')
            .ok_or_else(|| bad("no collection: write milvus://HOST:PORT/COLLECTION"))?;
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| bad("no port: write milvus://HOST:PORT/COLLECTION"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(bad(
                "the host must be a name or an IPv4 address (letters, digits, '.', '-', '_')",
            ));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        // Milvus's own rule for collection names: a letter or underscore, then letters, digits and
        // underscores, at most 255 characters.
        let valid = collection
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && collection.len() <= 255
            && collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad(
                "the collection name must start with a letter or '_' and hold only letters, digits \
                 and '_' (Milvus's rule)",
            ));
        }
        Ok(MilvusUrl {
            host: host.to_owned(),
            port,
            collection: collection.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MilvusUrl;

    #[test]
    fn parses_and_refuses_with_a_reason() {
        let url: MilvusUrl = "milvus://localhost:19530/fiq_shop".parse().unwrap();
        assert_eq!(url.to_string(), "milvus://localhost:19530/fiq_shop");
        for (text, reason) in [
            ("http://localhost:19530/x", "milvus://"),
            ("milvus://localhost:19530", "no collection"),
            ("milvus://localhost/x", "no port"),
            ("milvus://:19530/x", "no host"),
            ("milvus://localhost:0/x", "port"),
            ("milvus://localhost:99999/x", "port"),
            ("milvus://localhost:19530/", "collection name"),
            ("milvus://localhost:19530/1abc", "collection name"),
            ("milvus://localhost:19530/a-b", "collection name"),
            ("milvus://local host:19530/a", "host"),
        ] {
            let error = text.parse::<MilvusUrl>().unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
            assert!(error.contains(text), "{text}: {error}");
        }
    }
}
