"""The REST face's OpenAPI 3.1 document (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

_STATUS = {
    "type": "object",
    "properties": {
        "Code": {"type": "integer", "enum": [3000, 3002, 3004, 3206, 3208, 3209]},
        "Description": {"type": "string"},
        "Exception": {"type": ["string", "null"]},
    },
}
_DETAILS = {
    "type": "object",
    "properties": {
        "AdvancedInfo": {"type": "array", "items": {"type": "object"}},
        "MatchFlags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "Source": {"type": "string", "description": "the bank"},
                    "AdvancedInfo": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "Key": {"const": "MatchId"},
                                "Value": {"type": "string"},
                            },
                        },
                    },
                    "Violations": {"type": "array", "items": {"type": "string"}},
                    "MatchDistance": {"type": "integer"},
                },
            },
        },
    },
}
_KEY = [
    {
        "name": "Ocp-Apim-Subscription-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
    }
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "hashmatch PhotoDNA-compatible REST API",
        "version": "1.0",
        "description": "PhotoDNA Cloud's Match and MatchHash shapes over hashmatch "
        "(PDQ, MD5, SHA-256). Outcomes are in Status.Code of an HTTP 200 body; "
        "authentication and throttling errors are non-200 {statusCode, message}.",
    },
    "paths": {
        "/photodna/v1.0/Match": {
            "post": {
                "summary": "Match one image",
                "parameters": [
                    *_KEY,
                    {"name": "ContentId", "in": "query", "schema": {"type": "string"}},
                    {"name": "enhance", "in": "query", "schema": {"type": "boolean"}},
                ],
                "requestBody": {
                    "content": {
                        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "image/gif": {"schema": {"type": "string", "format": "binary"}},
                        "image/bmp": {"schema": {"type": "string", "format": "binary"}},
                        "image/tiff": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "DataRepresentation": {"const": "inline"},
                                    "Value": {"type": "string", "contentEncoding": "base64"},
                                },
                            }
                        },
                    }
                },
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "Status": _STATUS,
                                        "TrackingId": {"type": "string"},
                                        "ContentId": {"type": ["string", "null"]},
                                        "IsMatch": {"type": "boolean"},
                                        "MatchDetails": _DETAILS,
                                    },
                                }
                            }
                        }
                    }
                },
            }
        },
        "/photodna/v1.0/MatchHash": {
            "post": {
                "summary": "Match a batch of client-computed hashes (PDQ, MD5 or SHA256 hex)",
                "parameters": _KEY,
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "maxItems": 1000,
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "DataRepresentation": {"enum": ["PDQ", "MD5", "SHA256"]},
                                        "Value": {"type": "string"},
                                        "ContentId": {"type": "string"},
                                    },
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "TrackingId": {"type": "string"},
                                        "Status": _STATUS,
                                        "MatchResults": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "Status": _STATUS,
                                                    "ContentId": {"type": "string"},
                                                    "IsMatch": {"type": "boolean"},
                                                    "MatchDetails": _DETAILS,
                                                },
                                            },
                                        },
                                    },
                                }
                            }
                        }
                    }
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness, and where the hashing runs",
                "responses": {
                    "200": {"description": "serving: status, backend (cpu/gpu), device, decoder"}
                },
            }
        },
    },
}
