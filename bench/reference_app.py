"""The benchmark's reference: a bare Flask + marshmallow endpoint validating the same receipt payload."""

from __future__ import annotations

from flask import Flask, jsonify, request
from marshmallow import ValidationError

from receiver.vendors.generic import ReceiptSchema

app = Flask(__name__)
schema = ReceiptSchema()


@app.post("/v1/callbacks/generic/delivery-receipts")
def receipt():
    """Parse and validate, nothing else: the floor our full path is compared with."""
    try:
        schema.load(request.get_json())
    except ValidationError as exc:
        return jsonify(exc.messages), 400
    return jsonify({"status": "accepted"})
