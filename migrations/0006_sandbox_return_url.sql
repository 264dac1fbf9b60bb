-- Like a real provider's success URL: the sandbox payment page links the buyer back here.
ALTER TABLE sandbox_sessions ADD COLUMN return_url text;
