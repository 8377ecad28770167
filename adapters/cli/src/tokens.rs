//! `identityctl tokens ...`: TokenService calls, `--ttl` parsing and how tokens
//! are shown. Secrets appear only in the answer to `issue` (and to
//! `tenants enable-scim`, which shares the rendering here).

use clap::{ArgGroup, Subcommand};
use identity_proto::v1::{
    IssueTokenRequest, ListTokensRequest, RevokeTokenRequest, Token, TokenScope,
    revoke_token_request,
};
use serde::Serialize;

use crate::client::Connection;
use crate::error::CliError;
use crate::output::{self, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a new bearer token for a tenant and print its secret once.
    ///
    /// The secret is printed alone on the last line of stdout (text output) or as
    /// `secret` (JSON output); it is stored only as a hash and cannot be shown again.
    /// Several tokens may be live at once, so a tenant can rotate without a gap:
    /// issue a new one, switch the identity provider to it, then revoke the old one.
    /// SCIM tokens are refused while the tenant has SCIM disabled.
    #[command(
        after_help = "Examples:\n  identityctl tokens issue --tenant acme --name okta\n  \
                            SECRET=$(identityctl tokens issue --tenant acme --name entra --ttl 90d | tail -n 1)\n  \
                            identityctl tokens issue --tenant acme --name entra-2 --provider azuread --provider-display-name \"Entra ID\"\n  \
                            identityctl tokens issue --tenant acme --name hr-sync --scope service --scim-override"
    )]
    Issue {
        /// Slug of the tenant the token acts for.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Name to recognise the token by (unique among the tenant's live tokens).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Lifetime as a number and a unit (s, m, h, d), e.g. 90d, 12h, 1d12h.
        /// Default: the service's (365 days).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<prost_types::Duration>,
        /// Who uses the token: an identity provider (scim: the SCIM path, revoked by
        /// `tenants disable-scim`) or an internal service (service).
        #[arg(long, value_enum, default_value_t = ScopeArg::Scim)]
        scope: ScopeArg,
        /// Scheme name of the SSO provider the token is linked to, e.g. azuread.
        #[arg(long, value_name = "SCHEME")]
        provider: Option<String>,
        /// Human-readable name of that provider, e.g. "Entra ID"; needs --provider.
        #[arg(long, value_name = "NAME", requires = "provider")]
        provider_display_name: Option<String>,
        /// Let the token change SCIM-managed attributes despite the tenant's
        /// SCIM-managed lock; service tokens only.
        #[arg(long)]
        scim_override: bool,
    },
    /// List a tenant's tokens: id, name, prefix, scope, provider and dates
    /// (created, expires, last used, revoked), never secrets.
    #[command(after_help = "Examples:\n  identityctl tokens list --tenant acme\n  \
                      identityctl tokens list --tenant acme --show-revoked --output json")]
    List {
        /// Slug of the tenant.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Include revoked tokens.
        #[arg(long)]
        show_revoked: bool,
    },
    /// Revoke one token by name or by id; it stops working on the next request.
    #[command(
        group(ArgGroup::new("which_token").required(true).args(["name", "id"])),
        after_help = "Examples:\n  identityctl tokens revoke --tenant acme --name okta\n  \
                      identityctl tokens revoke --tenant acme --id 6f1c0d6e-2b1a-4c43-9d0e-5d0f4c2b9a10"
    )]
    Revoke {
        /// Slug of the tenant.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Name of the live token to revoke.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Id of the token to revoke (see `tokens list`).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
}

crate::flags::flag_enum!(
    /// `--scope`: the proto's TokenScope under the names operators type.
    ScopeArg <=> TokenScope {
        /// For an identity provider: the SCIM path.
        Scim = Scim,
        /// For an internal service: the same API, but not the SCIM path.
        Service = Service,
    }
);

/// A token as printed; field names follow the proto so JSON output matches the
/// API. The scope is spelled as `--scope` takes it. There is no secret here.
#[derive(Debug, Serialize)]
pub struct TokenView {
    id: String,
    tenant: String,
    name: String,
    prefix: String,
    scope: String,
    provider: String,
    provider_display_name: String,
    scim_override: bool,
    create_time: Option<String>,
    expire_time: Option<String>,
    last_use_time: Option<String>,
    revoke_time: Option<String>,
}

impl From<Token> for TokenView {
    fn from(token: Token) -> Self {
        Self {
            scope: crate::flags::label(ScopeArg::from(token.scope())),
            create_time: output::timestamp(token.create_time.as_ref()),
            expire_time: output::timestamp(token.expire_time.as_ref()),
            last_use_time: output::timestamp(token.last_use_time.as_ref()),
            revoke_time: output::timestamp(token.revoke_time.as_ref()),
            id: token.id,
            tenant: token.tenant,
            name: token.name,
            prefix: token.prefix,
            provider: token.provider,
            provider_display_name: token.provider_display_name,
            scim_override: token.scim_override,
        }
    }
}

impl TokenView {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `azuread (Entra ID)`, `azuread`, or `-` when the token is not linked.
    fn provider_label(&self) -> String {
        match (self.provider.as_str(), self.provider_display_name.as_str()) {
            ("", _) => "-".to_owned(),
            (provider, "") => provider.to_owned(),
            (provider, display) => format!("{provider} ({display})"),
        }
    }
}

#[derive(Debug, Serialize)]
struct IssuedToken {
    token: TokenView,
    secret: String,
}

#[derive(Debug, Serialize)]
struct TokenList {
    tokens: Vec<TokenView>,
}

pub async fn run(
    command: TokensCommand,
    connection: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let mut client = connection.tokens();
    match command {
        TokensCommand::Issue {
            tenant,
            name,
            ttl,
            scope,
            provider,
            provider_display_name,
            scim_override,
        } => {
            let issued = client
                .issue_token(IssueTokenRequest {
                    tenant,
                    name,
                    ttl,
                    scope: TokenScope::from(scope).into(),
                    provider: provider.unwrap_or_default(),
                    provider_display_name: provider_display_name.unwrap_or_default(),
                    scim_override,
                })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            let token = issued
                .token
                .ok_or(CliError::IncompleteAnswer("IssueToken returned no token"))?;
            let issued = IssuedToken {
                token: TokenView::from(token),
                secret: issued.secret,
            };
            match format {
                OutputFormat::Json => output::print_json(&issued),
                OutputFormat::Text => {
                    println!("{}", render_issued(&issued));
                    Ok(())
                }
            }
        }
        TokensCommand::List {
            tenant,
            show_revoked,
        } => {
            let tokens: Vec<TokenView> = client
                .list_tokens(ListTokensRequest {
                    tenant: tenant.clone(),
                    show_revoked,
                })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner()
                .tokens
                .into_iter()
                .map(TokenView::from)
                .collect();
            match format {
                OutputFormat::Json => output::print_json(&TokenList { tokens }),
                OutputFormat::Text => {
                    println!("{}", render_list(&tenant, &tokens, show_revoked));
                    Ok(())
                }
            }
        }
        TokensCommand::Revoke { tenant, name, id } => {
            // clap's ArgGroup guarantees exactly one of the two.
            let which = id
                .map(revoke_token_request::Token::Id)
                .or(name.map(revoke_token_request::Token::Name));
            let token = client
                .revoke_token(RevokeTokenRequest {
                    tenant,
                    token: which,
                })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            let token = TokenView::from(token);
            match format {
                OutputFormat::Json => output::print_json(&token),
                OutputFormat::Text => {
                    println!(
                        "revoked token {} ({}) of tenant {}",
                        token.name, token.id, token.tenant
                    );
                    println!("{}", render_fields(&token));
                    Ok(())
                }
            }
        }
    }
}

fn render_fields(token: &TokenView) -> String {
    let mut fields = vec![
        ("id", token.id.clone()),
        ("tenant", token.tenant.clone()),
        ("name", token.name.clone()),
        ("prefix", token.prefix.clone()),
        ("scope", token.scope.to_owned()),
        ("provider", token.provider_label()),
    ];
    if token.scim_override {
        fields.push(("scim override", "yes".to_owned()));
    }
    fields.extend([
        ("created", token.create_time.clone().unwrap_or_default()),
        ("expires", token.expire_time.clone().unwrap_or_default()),
        ("last used", or_dash(&token.last_use_time)),
        ("revoked", or_dash(&token.revoke_time)),
    ]);
    output::fields(&fields)
}

fn or_dash(time: &Option<String>) -> String {
    time.clone().unwrap_or_else(|| "-".to_owned())
}

/// Metadata first, the secret alone on the last line so `tail -n 1` extracts it.
pub fn render_with_secret(heading: &str, token: &TokenView, secret: &str) -> String {
    format!(
        "{heading}\n{}\n\
         The secret below is shown only this once; store it now:\n{secret}",
        render_fields(token),
    )
}

fn render_issued(issued: &IssuedToken) -> String {
    render_with_secret(
        &format!(
            "issued token {} for tenant {}",
            issued.token.name, issued.token.tenant
        ),
        &issued.token,
        &issued.secret,
    )
}

fn render_list(tenant: &str, tokens: &[TokenView], show_revoked: bool) -> String {
    if tokens.is_empty() {
        return if show_revoked {
            format!("tenant {tenant} has no tokens")
        } else {
            format!("tenant {tenant} has no live tokens (--show-revoked lists revoked ones too)")
        };
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.name.clone(),
                t.prefix.clone(),
                t.scope.to_owned(),
                t.provider_label(),
                t.create_time.clone().unwrap_or_default(),
                t.expire_time.clone().unwrap_or_default(),
                or_dash(&t.last_use_time),
                or_dash(&t.revoke_time),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "NAME",
            "PREFIX",
            "SCOPE",
            "PROVIDER",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "REVOKED",
        ],
        &rows,
    )
}

/// Parses `90d`, `12h`, `30m`, `3600s` and sums like `1d12h` into a positive duration.
fn parse_ttl(text: &str) -> Result<prost_types::Duration, String> {
    let usage = "expected a number and a unit (s, m, h or d), e.g. 90d, 12h, 1d12h";
    let text = text.trim();
    if text.is_empty() {
        return Err(usage.to_owned());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit: i64 = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(format!("unknown unit {ch:?}: {usage}")),
        };
        if digits.is_empty() {
            return Err(format!("missing number before {ch:?}: {usage}"));
        }
        let amount: i64 = digits.parse().map_err(|_| "the number is too large")?;
        total = amount
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or("the duration is too large")?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("missing unit after {digits}: {usage}"));
    }
    if total == 0 {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(prost_types::Duration {
        seconds: total,
        nanos: 0,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(subcommand)]
        command: TokensCommand,
    }

    fn parse(args: &[&str]) -> Result<TokensCommand, clap::Error> {
        Harness::try_parse_from(std::iter::once("tokens").chain(args.iter().copied()))
            .map(|h| h.command)
    }

    fn seconds(text: &str) -> i64 {
        parse_ttl(text).unwrap().seconds
    }

    #[test]
    fn ttl_units() {
        assert_eq!(seconds("45s"), 45);
        assert_eq!(seconds("30m"), 1_800);
        assert_eq!(seconds("12h"), 43_200);
        assert_eq!(seconds("90d"), 7_776_000);
        assert_eq!(seconds("1d12h"), 129_600);
    }

    #[test]
    fn ttl_rejects_malformed_values() {
        for bad in [
            "",
            "90",
            "d",
            "10w",
            "1.5d",
            "0d",
            "-1d",
            "99999999999999999999d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn revoke_needs_exactly_one_of_name_and_id() {
        assert!(parse(&["revoke", "--tenant", "acme", "--name", "okta"]).is_ok());
        assert!(parse(&["revoke", "--tenant", "acme", "--id", "x"]).is_ok());
        let neither = parse(&["revoke", "--tenant", "acme"]).unwrap_err();
        assert_eq!(neither.exit_code(), 2);
        let both = parse(&["revoke", "--tenant", "acme", "--name", "a", "--id", "b"]).unwrap_err();
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn issue_parses_ttl_and_leaves_default_to_the_service() {
        match parse(&[
            "issue", "--tenant", "acme", "--name", "okta", "--ttl", "90d",
        ])
        .unwrap()
        {
            TokensCommand::Issue { ttl, .. } => assert_eq!(ttl.unwrap().seconds, 7_776_000),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["issue", "--tenant", "acme", "--name", "okta"]).unwrap() {
            TokensCommand::Issue { ttl, scope, .. } => {
                assert!(ttl.is_none());
                assert_eq!(scope, ScopeArg::Scim);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn issue_takes_scope_and_provider() {
        match parse(&[
            "issue",
            "--tenant",
            "acme",
            "--name",
            "entra",
            "--scope",
            "service",
            "--provider",
            "azuread",
            "--provider-display-name",
            "Entra ID",
            "--scim-override",
        ])
        .unwrap()
        {
            TokensCommand::Issue {
                scope,
                provider,
                provider_display_name,
                scim_override,
                ..
            } => {
                assert_eq!(TokenScope::from(scope), TokenScope::Service);
                assert_eq!(provider.as_deref(), Some("azuread"));
                assert_eq!(provider_display_name.as_deref(), Some("Entra ID"));
                assert!(scim_override);
            }
            other => panic!("unexpected {other:?}"),
        }
        let orphan = parse(&[
            "issue",
            "--tenant",
            "acme",
            "--name",
            "x",
            "--provider-display-name",
            "Entra ID",
        ])
        .unwrap_err();
        assert_eq!(
            orphan.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        let unknown = parse(&["issue", "--tenant", "a", "--name", "x", "--scope", "all"]);
        assert_eq!(
            unknown.unwrap_err().kind(),
            clap::error::ErrorKind::InvalidValue
        );
    }

    fn sample() -> IssuedToken {
        IssuedToken {
            token: TokenView::from(Token {
                id: "6f1c0d6e-2b1a-4c43-9d0e-5d0f4c2b9a10".into(),
                tenant: "acme".into(),
                name: "okta".into(),
                prefix: "idl_AbCdEfGh".into(),
                create_time: Some(prost_types::Timestamp {
                    seconds: 1_795_420_800,
                    nanos: 0,
                }),
                expire_time: None,
                revoke_time: None,
                provider: "azuread".into(),
                provider_display_name: "Entra ID".into(),
                last_use_time: Some(prost_types::Timestamp {
                    seconds: 1_795_424_400,
                    nanos: 0,
                }),
                ..Token::default()
            }),
            secret: "idl_secret".into(),
        }
    }

    #[test]
    fn issued_secret_is_alone_on_the_last_line() {
        let rendered = render_issued(&sample());
        assert_eq!(rendered.lines().last(), Some("idl_secret"));
        assert!(rendered.starts_with("issued token okta for tenant acme\n"));
    }

    #[test]
    fn listings_never_contain_the_secret() {
        let issued = sample();
        let listed = render_list("acme", std::slice::from_ref(&issued.token), false);
        assert!(!listed.contains("idl_secret"));
        assert!(listed.contains("idl_AbCdEfGh"));
        let mut lines = listed.lines();
        assert!(lines.next().unwrap().contains("SCOPE  PROVIDER"));
        let row = lines.next().unwrap();
        assert!(
            row.contains(" scim ") && row.contains(" azuread (Entra ID) "),
            "{row}"
        );
        assert!(row.contains("2026-11-23T09:00:00Z"), "last used: {row}");
        let json = serde_json::to_string(&TokenList {
            tokens: vec![issued.token],
        })
        .unwrap();
        assert!(!json.contains("idl_secret"));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let token = &value["tokens"][0];
        assert_eq!(token["scope"], "scim");
        assert_eq!(token["provider_display_name"], "Entra ID");
        assert_eq!(token["last_use_time"], "2026-11-23T09:00:00Z");
        assert_eq!(token["revoke_time"], serde_json::Value::Null);
    }
}
