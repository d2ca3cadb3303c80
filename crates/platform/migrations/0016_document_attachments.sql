-- Attachments of official documents (公文附件): the files live in the blob store under their SM3;
-- a row names one file of one document. Issued documents' sealed packages are in the blob store
-- too (documents.package_sm3 is the key; documents.package stays empty for them).
CREATE TABLE document_attachments (
    id {{ID}},
    document_id BIGINT NOT NULL REFERENCES documents(id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX document_attachments_document ON document_attachments(document_id);
