-- Notifications (通知): in-app messages for staff and for citizens, and outbound SMS and e-mail
-- messages, each sent by a job with retries (the job's state is the delivery state).

CREATE TABLE notifications (
    id {{ID}},
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('staff', 'public')),
    recipient_id BIGINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX notifications_recipient ON notifications(recipient_kind, recipient_id, read_at);

CREATE TABLE notify_messages (
    id {{ID}},
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
