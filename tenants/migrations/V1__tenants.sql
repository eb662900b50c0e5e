-- Tenants, their sealed secrets, their partner API credentials, and the audit trail.
-- No plaintext secret is ever stored: every secret is AES-256-GCM sealed with the tenant's data
-- key, which is itself wrapped by a master key that lives outside the database.

CREATE TABLE tenants (
    id                 uuid PRIMARY KEY,
    slug               text NOT NULL,
    display_name       text NOT NULL,
    status             text NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    dialect            text NOT NULL CHECK (dialect IN ('openapi', 'mapi')),
    alipay_id          text NOT NULL,
    seller_id          text,
    sign_type          text NOT NULL CHECK (sign_type IN ('RSA2', 'RSA', 'MD5')),
    environment        text NOT NULL CHECK (environment IN ('sandbox', 'production', 'custom')),
    upstream_url       text,
    pay_rate           integer NOT NULL CHECK (pay_rate > 0),
    pay_burst          integer NOT NULL CHECK (pay_burst > 0),
    other_rate         integer NOT NULL CHECK (other_rate > 0),
    webhook_url        text,
    secondary_merchant jsonb,
    master_key_id      text,
    wrapped_data_key   bytea,
    version            bigint NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((environment = 'custom') = (upstream_url IS NOT NULL)),
    CHECK ((status = 'deleted') = (wrapped_data_key IS NULL)),
    CHECK (dialect = 'mapi' OR sign_type <> 'MD5')
);

-- A deleted tenant keeps its row (its trades keep their history) but frees its slug.
CREATE UNIQUE INDEX tenants_live_slug ON tenants (slug) WHERE status <> 'deleted';

CREATE TABLE tenant_secrets (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('app_private_key', 'md5_key', 'alipay_public_key', 'webhook_secret')),
    version     integer NOT NULL CHECK (version > 0),
    sealed      bytea NOT NULL,
    -- SHA-256 of the public key (for RSA keys): shown to ops to tell keys apart; not secret.
    fingerprint text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, purpose, version)
);

CREATE TABLE api_credentials (
    key_id        text PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sealed_secret bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- NULL while current; set to the end of the overlap when the secret is rotated.
    expires_at    timestamptz
);
CREATE INDEX api_credentials_tenant ON api_credentials (tenant_id);

CREATE TABLE tenant_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    tenant_id   uuid,
    tenant_slug text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Every change to a tenant bumps its version; the services' snapshots listen for it. (Re-wrapping
-- a data key under a new master key changes no secret and keeps the version: no reload storm.)
CREATE FUNCTION tenants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenants_changed', NEW.id::text);
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_inserted AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_changed();
CREATE TRIGGER tenants_updated AFTER UPDATE ON tenants
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version) EXECUTE FUNCTION tenants_changed();
