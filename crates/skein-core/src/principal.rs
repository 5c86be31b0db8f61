//! `ssl.principal.mapping.rules`: how a TLS client certificate's subject becomes a principal name, with the
//! rules of Kafka's `SslPrincipalMapper`.
//!
//! Rules are tried in order: `DEFAULT` keeps the distinguished name (RFC 2253 form, `CN=alice,O=Example`) as it
//! is; `RULE:pattern/replacement/` applies when the pattern matches the whole name, and the name becomes the
//! replacement (`$1` for the first group), lower-cased with a trailing `L`, upper-cased with `U`. A name no rule
//! applies to fails the connection's authentication, as in Kafka.

use regex::Regex;

/// One rule.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace { pattern: Regex, replacement: String, case: Option<char> },
}

/// The parsed rules of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
    text: String,
}

impl PrincipalMapper {
    /// Parses the rules; the error names the rule that does not parse.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(|| format!("Invalid rule: {rest}"))?;
                let (replacement, after) = until_slash(after).ok_or_else(|| format!("Invalid rule: {rest}"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                // The whole name must match, as Java's `Matcher.matches`.
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|err| format!("Invalid rule pattern {pattern}: {err}"))?;
                rules.push(Rule::Replace { pattern, replacement: java_replacement(&replacement), case });
                rest = after;
            } else {
                return Err(format!("Invalid rule: {rest}"));
            }
            // Anything up to the next comma belongs to the rule just read (Kafka ignores it too).
            rest = match rest.find(',') {
                Some(comma) => rest[comma + 1..].trim_start(),
                None => "",
            };
        }
        if rules.is_empty() {
            return Err("ssl.principal.mapping.rules names no rule".to_owned());
        }
        Ok(PrincipalMapper { rules, text: text.to_owned() })
    }

    /// The principal name for distinguished name `dn`.
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_owned()),
                Rule::Replace { pattern, replacement, case } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        Err(format!("No rules apply to {dn}, rules {}", self.text))
    }
}

/// Mappers are the same when their rules read the same.
impl PartialEq for PrincipalMapper {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PrincipalMapper {}

impl Default for PrincipalMapper {
    fn default() -> Self {
        PrincipalMapper { rules: vec![Rule::Default], text: "DEFAULT".to_owned() }
    }
}

/// The text up to the next unescaped `/` (`\/` stands for a slash), and what follows that slash.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            '/' => return Some((out, &text[i + 1..])),
            other => out.push(other),
        }
    }
    None
}

/// A Java replacement (`$1`, `\$` for a dollar) in the regex crate's syntax (`${1}`, `$$`).
fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_map_names_as_kafka_documents() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, \
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .expect("parses");
        assert_eq!(mapper.name("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US").as_deref(), Ok("kafka-server1"));
        assert_eq!(
            mapper.name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa,ST=CA,C=US").as_deref(),
            Ok("duke@javasoft")
        );
        assert_eq!(mapper.name("OU=x,cn=alice").as_deref(), Ok("ALICE"));
        assert_eq!(mapper.name("O=nothing").as_deref(), Ok("O=nothing"));
        let strict = PrincipalMapper::parse("RULE:^CN=([^,]*),O=Skein tests$/$1/L").expect("parses");
        assert_eq!(strict.name("CN=Alice,O=Skein tests").as_deref(), Ok("alice"));
        assert_eq!(
            strict.name("CN=bob"),
            Err("No rules apply to CN=bob, rules RULE:^CN=([^,]*),O=Skein tests$/$1/L".to_owned())
        );
        assert!(PrincipalMapper::parse("RULE:oops").is_err());
        assert!(PrincipalMapper::parse("NOPE").is_err());
        assert_eq!(PrincipalMapper::default().name("CN=x").as_deref(), Ok("CN=x"));
    }
}
