-- +goose Up
-- Issue 10: click tracking used to register every distinct URL of every mail, so a campaign that
-- wrapped a member's preferences or unsubscribe link in another URL stored one row per recipient,
-- token included, and the campaign stats showed them to marketers. Links are now registered from
-- the template only; this removes the member tokens already stored. A token is
-- <member id>.<expiry in base 36>.<24 characters of HMAC> (models/token.go). Rows that become
-- equal are merged into the oldest, their clicks with them, so click counts are kept.
CREATE TEMP TABLE link_redaction ON COMMIT DROP AS
SELECT id, new_url, min(id) OVER (PARTITION BY campaign_id, new_url) AS keep_id
FROM (SELECT id, campaign_id,
             regexp_replace(url, '[0-9]+\.[0-9a-z]+\.[A-Za-z0-9_-]{24}(?![A-Za-z0-9_-])', 'redacted', 'g') AS new_url
      FROM campaign_links) l
WHERE campaign_id IN (SELECT campaign_id FROM campaign_links
                      WHERE url ~ '[0-9]+\.[0-9a-z]+\.[A-Za-z0-9_-]{24}(?![A-Za-z0-9_-])');

UPDATE campaign_clicks c SET link_id = r.keep_id
FROM link_redaction r WHERE c.link_id = r.id AND r.id <> r.keep_id;

DELETE FROM campaign_links l USING link_redaction r WHERE l.id = r.id AND r.id <> r.keep_id;

UPDATE campaign_links l SET url = r.new_url
FROM link_redaction r WHERE l.id = r.id AND l.url <> r.new_url;

-- +goose Down
-- The tokens are gone for good; nothing to undo.
SELECT 1;
