"""Webhook subscriptions: outbox dispatcher, HMAC signing, message formats (JSON, DingTalk, WeCom, Feishu)."""
