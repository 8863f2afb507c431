-- +goose Up
-- Issue 10: a preferences link travels in every campaign mail, whose HTML a marketer writes, so it
-- is only a low-privilege link. Exporting, erasing and granting marketing consent again need a
-- link the member asks for on the preferences page and gets by mail: one row per request here.
-- The link's token is an HMAC-signed token naming the row (models.SignToken), so nothing in the
-- database works as a credential; used_at makes it single use.
CREATE TABLE member_links (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    action     text NOT NULL CHECK (action IN ('export', 'erase', 'consent')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX member_links_member ON member_links (member_id);

-- The mail that carries such a link names its row. mailbox is the recipient address normalised
-- (lower case, without a +tag) so that the hourly cap on mail the public can trigger counts
-- name+1@ and name+2@ as the one mailbox they are.
ALTER TABLE club_mail
    ADD COLUMN link_id bigint REFERENCES member_links (id) ON DELETE CASCADE,
    ADD COLUMN mailbox text NOT NULL DEFAULT '';
UPDATE club_mail SET mailbox = regexp_replace(lower(to_addr), '\+[^@]*@', '@');
ALTER TABLE club_mail DROP CONSTRAINT club_mail_kind_check;
ALTER TABLE club_mail ADD CONSTRAINT club_mail_kind_check CHECK (kind IN ('confirm', 'consent_confirm',
    'already_member', 'welcome', 'link_export', 'link_erase', 'link_consent'));
CREATE INDEX club_mail_mailbox ON club_mail (mailbox, created_at);
CREATE INDEX club_mail_link ON club_mail (link_id) WHERE link_id IS NOT NULL;

-- +goose Down
DROP INDEX club_mail_link;
DROP INDEX club_mail_mailbox;
DELETE FROM club_mail WHERE kind IN ('link_export', 'link_erase', 'link_consent');
ALTER TABLE club_mail DROP CONSTRAINT club_mail_kind_check;
ALTER TABLE club_mail ADD CONSTRAINT club_mail_kind_check CHECK (kind IN ('confirm', 'consent_confirm',
    'already_member', 'welcome'));
ALTER TABLE club_mail DROP COLUMN mailbox, DROP COLUMN link_id;
DROP TABLE member_links;
