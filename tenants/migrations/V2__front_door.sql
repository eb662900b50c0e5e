-- Front doors: the Alipay-compatible gateway.do a tenant's POS software may call instead of
-- Alipay's, under an app id (OpenAPI) or partner (MAPI) of our own. Its keys are tenant secrets
-- (sealed with the tenant's data key, as every other secret) with a time window:
--   front_door_pos_key       the POS's public key (RSA, RSA2) or the MD5 key (MD5): verifies the
--                            POS's requests until valid_until (NULL: the current one);
--   front_door_platform_key  our RSA private key that signs answers and notifications from
--                            valid_from (NULL: from the start) on; its public half (bare base64
--                            SPKI, not secret) is in public_key, for ops to hand the POS vendor.

-- The dialect is the tenant's own (the foreign key keeps them equal).
ALTER TABLE tenants ADD CONSTRAINT tenants_id_dialect UNIQUE (id, dialect);

CREATE TABLE front_doors (
    tenant_id     uuid PRIMARY KEY,
    dialect       text NOT NULL CHECK (dialect IN ('openapi', 'mapi')),
    -- The app id (OpenAPI, 1 to 32 digits) or partner (MAPI, 2088 and 12 digits) the POS sends.
    front_door_id text NOT NULL CHECK (front_door_id ~ '^[0-9]{1,32}$'),
    sign_type     text NOT NULL CHECK (sign_type IN ('RSA2', 'RSA', 'MD5')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, dialect) REFERENCES tenants (id, dialect) ON DELETE CASCADE,
    CHECK (dialect = 'mapi' OR sign_type <> 'MD5'),
    CHECK (dialect = 'openapi' OR front_door_id ~ '^2088[0-9]{12}$'),
    -- The gateway finds the tenant by it: one per dialect (a deleted tenant's row is removed).
    CONSTRAINT front_doors_id_unique UNIQUE (dialect, front_door_id)
);

ALTER TABLE tenant_secrets
    DROP CONSTRAINT tenant_secrets_purpose_check,
    ADD CONSTRAINT tenant_secrets_purpose_check CHECK (purpose IN (
        'app_private_key', 'md5_key', 'alipay_public_key', 'webhook_secret',
        'front_door_pos_key', 'front_door_platform_key')),
    ADD COLUMN valid_from  timestamptz,
    ADD COLUMN valid_until timestamptz,
    ADD COLUMN public_key  text,
    ADD CONSTRAINT tenant_secrets_window CHECK (
        purpose IN ('front_door_pos_key', 'front_door_platform_key')
        OR (valid_from IS NULL AND valid_until IS NULL AND public_key IS NULL)),
    ADD CONSTRAINT tenant_secrets_platform_public CHECK (
        purpose <> 'front_door_platform_key' OR public_key IS NOT NULL);
