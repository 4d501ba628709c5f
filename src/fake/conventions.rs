//! The AWS conventions every part of the fake follows: the account and region it runs as, EC2's filter
//! wildcards, timestamps as EC2 prints them, and service errors carrying AWS's error codes.

use crate::cloud::CloudError;

/// The account the fake runs as: `self` in owner filters, the owner of every image it creates.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// A service error with AWS's code for it (`InvalidAMIID.NotFound`, `ValidationError`, ...).
pub(crate) fn err(action: &str, code: &str, msg: impl Into<String>) -> CloudError {
    CloudError::service(action, Some(code), msg)
}

/// Days-to-civil from Howard Hinnant's date algorithms; avoids a date crate for one format.
pub(crate) fn iso8601(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// EC2 filter matching: `*` is any run of characters, `?` exactly one.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(1_767_225_600), "2026-01-01T00:00:00.000Z", "the fake's epoch");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400 + 3661), "2000-02-29T01:01:01.000Z");
    }

    #[test]
    fn glob_handles_star_and_question_mark() {
        assert!(glob("al2023-ami-*-x86_64", "al2023-ami-2023.6-kernel-6.1-x86_64"));
        assert!(glob("shop-web-??", "shop-web-42"));
        assert!(!glob("shop-web-??", "shop-web-4"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b", "aXbY"));
        assert!(glob("ec2:*", "ec2:CreateImage"));
    }
}
