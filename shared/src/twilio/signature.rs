//! Checking that a webhook really came from Twilio (`X-Twilio-Signature`), so nobody who
//! guesses a webhook URL can fake a call, a status change or a recording.
//!
//! Twilio's algorithm: take the full URL it requested (scheme, host, path and query
//! string, exactly as configured); for a form POST append every parameter's name
//! immediately followed by its value, sorted by name and, for a repeated name, by value;
//! compute HMAC-SHA1 of that string keyed with the account's auth token; send the digest
//! base64-encoded (standard alphabet, padded). A request with a JSON body instead carries
//! a `bodySHA256` query parameter (the hex SHA-256 of the raw body) and is signed over the
//! URL alone.
//!
//! Like Twilio's own SDK validators, [`is_valid`] and [`is_valid_json`] accept a signature
//! made over the URL with or without its port (`https://host/x` or `https://host:443/x`),
//! because Twilio is not consistent about which one it signs.
//!
//! The URL must be the one Twilio requested. Behind API Gateway a Lambda sees the
//! gateway's host and a path without the stage prefix, so rebuild it with [`public_url`]
//! from the configured public base URL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio sends for a request to `url` (used exactly as given) with form
/// parameters `params` (in any order; empty for a GET or a JSON body).
pub fn expected_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    digest(auth_token, url, params)
        .map(|d| STANDARD.encode(d))
        .unwrap_or_default()
}

/// Whether `signature` (the `X-Twilio-Signature` header) is Twilio's for a form (or GET)
/// request to `url` with `params`, with or without the URL's port. Compared in constant
/// time; any string, however malformed, is simply not valid.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let (without_port, with_port) = port_variants(url);
    // `|`, not `||`: both comparisons always run.
    matches(auth_token, &without_port, params, signature)
        | matches(auth_token, &with_port, params, signature)
}

/// Whether a request with a JSON `body` is Twilio's: `url` must carry `bodySHA256` equal
/// to the hex SHA-256 of the raw body, and `signature` must be Twilio's for the URL alone
/// (with or without its port). A URL without `bodySHA256` is never valid here.
pub fn is_valid_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let actual = hex::encode(Sha256::digest(body));
    let body_matches: bool = actual
        .as_bytes()
        .ct_eq(claimed.to_ascii_lowercase().as_bytes())
        .into();
    body_matches & is_valid(auth_token, url, &[], signature)
}

/// The URL Twilio requested, from the configured public base URL (which may end in an API
/// Gateway stage prefix such as `/prod`, with or without a trailing slash) and the path and
/// query the request arrived with. A path that already starts with the stage prefix (a
/// whole segment of it) is not prefixed again; a missing leading `/` is added.
///
/// `public_url("https://abc.execute-api.eu-west-1.amazonaws.com/prod/", "/twilio/voice?t=1")`
/// is `https://abc.execute-api.eu-west-1.amazonaws.com/prod/twilio/voice?t=1`, and so is
/// the same with `/prod/twilio/voice?t=1`.
pub fn public_url(base: &str, path_and_query: &str) -> String {
    let base = base.trim_end_matches('/');
    let path_start = base.find("://").map_or(0, |i| i + 3);
    let prefix = base[path_start..]
        .find('/')
        .map_or("", |i| &base[path_start + i..]);
    let origin = &base[..base.len() - prefix.len()];
    let slash = if path_and_query.starts_with('/') {
        ""
    } else {
        "/"
    };
    let path = format!("{slash}{path_and_query}");
    let already_prefixed = !prefix.is_empty()
        && path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']));
    if already_prefixed {
        format!("{origin}{path}")
    } else {
        format!("{base}{path}")
    }
}

/// HMAC-SHA1 over the URL and the sorted name-value pairs.
fn digest(auth_token: &str, url: &str, params: &[(String, String)]) -> Option<[u8; 20]> {
    // HMAC takes keys of any length, so this never fails in practice.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).ok()?;
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    Some(mac.finalize().into_bytes().into())
}

fn matches(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    digest(auth_token, url, params).is_some_and(|d| {
        STANDARD
            .encode(d)
            .as_bytes()
            .ct_eq(signature.as_bytes())
            .into()
    })
}

/// `url` without its port, and with it (the scheme's default when it names none). A URL
/// this cannot make sense of comes back unchanged in both.
fn port_variants(url: &str) -> (String, String) {
    let unchanged = || (url.to_owned(), url.to_owned());
    let Some(scheme_end) = url.find("://") else {
        return unchanged();
    };
    let host_start = scheme_end + 3;
    let end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| host_start + i);
    // Skip any `user:password@`.
    let host_start = url[host_start..end]
        .rfind('@')
        .map_or(host_start, |i| host_start + i + 1);
    let host_port = &url[host_start..end];
    // The port's colon is the last one, outside an IPv6 literal's brackets.
    let colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    match colon {
        Some(i) if host_port[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            let colon = host_start + i;
            (format!("{}{}", &url[..colon], &url[end..]), url.to_owned())
        }
        Some(_) => unchanged(),
        None => {
            let https = url[..scheme_end].eq_ignore_ascii_case("https");
            let port = if https { 443 } else { 80 };
            (
                url.to_owned(),
                format!("{}:{port}{}", &url[..end], &url[end..]),
            )
        }
    }
}

/// The first value of query parameter `name`, as sent (not percent-decoded).
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The worked example of Twilio's security documentation.
    fn docs_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }
    const DOCS_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    fn hmac_b64(token: &str, data: &str) -> String {
        let mut mac = HmacSha1::new_from_slice(token.as_bytes()).unwrap();
        mac.update(data.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn twilio_documented_example() {
        let params = docs_params();
        assert_eq!(expected_signature(TOKEN, URL, &params), DOCS_SIGNATURE);
        assert!(is_valid(TOKEN, URL, &params, DOCS_SIGNATURE));
    }

    #[test]
    fn twilio_php_sdk_documented_example() {
        // The same example in the PHP SDK's docs, with other phone numbers.
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert!(is_valid(
            TOKEN,
            URL,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut params = docs_params();
        params.reverse();
        params.swap(1, 3);
        assert!(is_valid(TOKEN, URL, &params, DOCS_SIGNATURE));
    }

    #[test]
    fn repeated_names_are_sorted_by_name_then_value() {
        let params = pairs(&[("b", "2"), ("a", "z"), ("b", "1"), ("a", "y")]);
        // The string Twilio signs: the URL, then a y, a z, b 1, b 2.
        let want = hmac_b64(TOKEN, "https://x.test/hayazb1b2");
        assert_eq!(expected_signature(TOKEN, "https://x.test/h", &params), want);
        assert!(is_valid(TOKEN, "https://x.test/h", &params, &want));
        // Names sort byte-wise (upper case before lower case), like the SDKs' sorts.
        let params = pairs(&[("a", "1"), ("B", "2"), ("", "3")]);
        let want = hmac_b64(TOKEN, "https://x.test/h3B2a1");
        assert_eq!(expected_signature(TOKEN, "https://x.test/h", &params), want);
    }

    #[test]
    fn no_params_signs_the_url_alone() {
        assert_eq!(expected_signature(TOKEN, URL, &[]), hmac_b64(TOKEN, URL));
        assert!(is_valid(TOKEN, URL, &[], &hmac_b64(TOKEN, URL)));
    }

    #[test]
    fn tampering_is_rejected() {
        let mut tampered = docs_params();
        tampered[2].1 = "1235".into();
        assert!(!is_valid(TOKEN, URL, &tampered, DOCS_SIGNATURE));

        let mut renamed = docs_params();
        renamed[2].0 = "digits".into();
        assert!(!is_valid(TOKEN, URL, &renamed, DOCS_SIGNATURE));

        let mut missing = docs_params();
        missing.remove(0);
        assert!(!is_valid(TOKEN, URL, &missing, DOCS_SIGNATURE));

        let mut extra = docs_params();
        extra.push(("Extra".into(), "1".into()));
        assert!(!is_valid(TOKEN, URL, &extra, DOCS_SIGNATURE));

        let other_url = "https://mycompany.com/myapp.php?foo=1&bar=3";
        assert!(!is_valid(TOKEN, other_url, &docs_params(), DOCS_SIGNATURE));
        let http = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(!is_valid(TOKEN, http, &docs_params(), DOCS_SIGNATURE));
    }

    #[test]
    fn wrong_token_is_rejected() {
        assert!(!is_valid("12346", URL, &docs_params(), DOCS_SIGNATURE));
        assert!(!is_valid("", URL, &docs_params(), DOCS_SIGNATURE));
    }

    #[test]
    fn empty_and_garbage_signatures_are_rejected_without_panicking() {
        let huge = "A".repeat(1 << 20);
        let near_miss = DOCS_SIGNATURE.replace('0', "1");
        let with_space = format!(" {DOCS_SIGNATURE}");
        for bad in [
            "",
            "=",
            "====",
            "not base64 at all!",
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ",
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ==",
            "0_KCTR6DLpKmkAf8muzZqo1nDgQ=",
            "\u{0}\u{ffff}ü€😀",
            &near_miss,
            &with_space,
            &huge,
        ] {
            assert!(!is_valid(TOKEN, URL, &docs_params(), bad), "{bad:.40}");
            assert!(!is_valid_json(TOKEN, URL, b"{}", bad));
        }
        // Garbage URLs and tokens are only invalid, too.
        for url in ["", "://", "https://", "https://[::1", "https://h:/", "h:1"] {
            assert!(!is_valid(TOKEN, url, &[], DOCS_SIGNATURE));
            let _ = expected_signature("", url, &docs_params());
        }
    }

    #[test]
    fn url_signed_without_port_validates_with_default_port() {
        let signed = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = expected_signature(TOKEN, signed, &docs_params());
        let arrived = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(is_valid(TOKEN, arrived, &docs_params(), &sig));

        let sig = expected_signature(TOKEN, "http://h.test/x", &[]);
        assert!(is_valid(TOKEN, "http://h.test:80/x", &[], &sig));
    }

    #[test]
    fn url_signed_with_port_validates_without_it() {
        let signed = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let sig = expected_signature(TOKEN, signed, &docs_params());
        assert!(is_valid(TOKEN, URL, &docs_params(), &sig));

        let sig = expected_signature(TOKEN, "http://h.test:80/x", &[]);
        assert!(is_valid(TOKEN, "http://h.test/x", &[], &sig));
    }

    #[test]
    fn a_different_port_is_a_different_url() {
        let sig = expected_signature(TOKEN, "https://h.test:8443/x", &[]);
        assert!(is_valid(TOKEN, "https://h.test:8443/x", &[], &sig));
        assert!(!is_valid(TOKEN, "https://h.test/x", &[], &sig));
        assert!(!is_valid(TOKEN, "https://h.test:9443/x", &[], &sig));
    }

    #[test]
    fn port_variants_handle_userinfo_ipv6_and_bare_hosts() {
        assert_eq!(
            port_variants("https://u:p@h.test:8443/a:b?c=d:e"),
            (
                "https://u:p@h.test/a:b?c=d:e".to_owned(),
                "https://u:p@h.test:8443/a:b?c=d:e".to_owned()
            )
        );
        assert_eq!(
            port_variants("https://[2001:db8::1]/x"),
            (
                "https://[2001:db8::1]/x".to_owned(),
                "https://[2001:db8::1]:443/x".to_owned()
            )
        );
        assert_eq!(
            port_variants("http://[::1]:8080?q"),
            (
                "http://[::1]?q".to_owned(),
                "http://[::1]:8080?q".to_owned()
            )
        );
        assert_eq!(
            port_variants("https://h.test"),
            ("https://h.test".to_owned(), "https://h.test:443".to_owned())
        );
        assert_eq!(
            port_variants("no scheme"),
            ("no scheme".to_owned(), "no scheme".to_owned())
        );
    }

    fn json_url(base: &str, body: &[u8]) -> String {
        format!("{base}?bodySHA256={}", hex::encode(Sha256::digest(body)))
    }

    #[test]
    fn json_body_is_checked_against_body_sha256() {
        let body = br#"{"CallSid":"CA123","CallStatus":"completed"}"#;
        let url = json_url("https://h.test/twilio/status", body);
        let sig = expected_signature(TOKEN, &url, &[]);
        assert!(is_valid_json(TOKEN, &url, body, &sig));

        // The body changed, or the signature, token or hash is wrong.
        assert!(!is_valid_json(TOKEN, &url, br#"{"CallSid":"CA124"}"#, &sig));
        assert!(!is_valid_json(TOKEN, &url, b"", &sig));
        assert!(!is_valid_json("other", &url, body, &sig));
        assert!(!is_valid_json(TOKEN, &url, body, ""));
        let forged = json_url("https://h.test/twilio/status", b"{}");
        assert!(!is_valid_json(TOKEN, &forged, body, &sig));
        let forged_sig = expected_signature(TOKEN, &forged, &[]);
        assert!(!is_valid_json(TOKEN, &forged, body, &forged_sig));
    }

    #[test]
    fn json_without_body_sha256_is_never_valid() {
        let url = "https://h.test/twilio/status?x=1";
        let sig = expected_signature(TOKEN, url, &[]);
        assert!(is_valid(TOKEN, url, &[], &sig));
        assert!(!is_valid_json(TOKEN, url, b"{}", &sig));
        let url = "https://h.test/twilio/status?bodySHA256";
        let sig = expected_signature(TOKEN, url, &[]);
        assert!(!is_valid_json(TOKEN, url, b"{}", &sig));
    }

    #[test]
    fn json_validates_across_port_variants() {
        let body = b"{\"a\":1}";
        let signed = json_url("https://h.test/s", body);
        let sig = expected_signature(TOKEN, &signed, &[]);
        let arrived = json_url("https://h.test:443/s", body);
        assert!(is_valid_json(TOKEN, &arrived, body, &sig));
    }

    #[test]
    fn query_param_takes_the_first_value_before_any_fragment() {
        assert_eq!(query_param("https://h/x?a=1&b=2&a=3", "a"), Some("1"));
        assert_eq!(query_param("https://h/x?b=2#a=1", "a"), None);
        assert_eq!(query_param("https://h/x?a", "a"), None);
        assert_eq!(query_param("https://h/x", "a"), None);
    }

    #[test]
    fn public_url_joins_stage_prefix_once() {
        let gw = "https://abc.execute-api.eu-west-1.amazonaws.com/prod";
        let want = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/twilio/voice?tenant=t1";
        for base in [gw.to_owned(), format!("{gw}/"), format!("{gw}//")] {
            assert_eq!(public_url(&base, "/twilio/voice?tenant=t1"), want);
            assert_eq!(public_url(&base, "/prod/twilio/voice?tenant=t1"), want);
            assert_eq!(public_url(&base, "twilio/voice?tenant=t1"), want);
        }
        // A path that only looks like the prefix still gets it.
        assert_eq!(
            public_url(gw, "/production/x"),
            format!("{gw}/production/x")
        );
        assert_eq!(public_url(gw, "/prod"), gw);
        assert_eq!(public_url(gw, "/prod?x=1"), format!("{gw}?x=1"));
    }

    #[test]
    fn public_url_without_stage_prefix() {
        assert_eq!(
            public_url("https://voice.example.com/", "/twilio/voice"),
            "https://voice.example.com/twilio/voice"
        );
        assert_eq!(
            public_url("http://127.0.0.1:8080", "/twilio/voice?a=1&b=2"),
            "http://127.0.0.1:8080/twilio/voice?a=1&b=2"
        );
        assert_eq!(
            public_url("https://voice.example.com/a/b", "/a/b/c"),
            "https://voice.example.com/a/b/c"
        );
        assert_eq!(
            public_url("https://voice.example.com/a/b", "/a/c"),
            "https://voice.example.com/a/b/a/c"
        );
    }

    #[test]
    fn request_behind_api_gateway_validates_through_public_url() {
        let base = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/";
        let signed = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/twilio/voice?tenant=t1";
        let sig = expected_signature(TOKEN, signed, &docs_params());
        // What the Lambda sees: the path without the stage.
        let url = public_url(base, "/twilio/voice?tenant=t1");
        assert!(is_valid(TOKEN, &url, &docs_params(), &sig));
        assert!(!is_valid(
            TOKEN,
            "/twilio/voice?tenant=t1",
            &docs_params(),
            &sig
        ));
    }
}
