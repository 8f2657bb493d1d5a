"""The benchmark's references: a bare Flask + marshmallow endpoint validating the same receipt payload, and the
same endpoint that also puts the body on Kafka and waits for the ack (the least any correct receiver must do)."""

from __future__ import annotations

from flask import Flask, jsonify, request
from marshmallow import ValidationError

from receiver.vendors.generic import ReceiptSchema

app = Flask(__name__)
schema = ReceiptSchema()


@app.post("/v1/callbacks/generic/delivery-receipts")
def receipt():
    """Parse and validate, nothing else: the floor our full path is compared with (the issue's reference)."""
    try:
        schema.load(request.get_json())
    except ValidationError as exc:
        return jsonify(exc.messages), 400
    return jsonify({"status": "accepted"})


def create_acking_app() -> Flask:
    """The bare endpoint plus the receiver's own publisher: validate, publish the body, wait for the ack, answer.

    Our full path against this one is the cost of everything we do besides validating and the Kafka ack.
    """
    from core.settings import load_settings
    from receiver.confluent_publisher import ConfluentPublisher

    acking = Flask(__name__)
    publisher = ConfluentPublisher(load_settings())

    @acking.post("/v1/callbacks/generic/delivery-receipts")
    def acked_receipt():
        body = request.get_data()
        try:
            document = schema.load(request.get_json())
        except ValidationError as exc:
            return jsonify(exc.messages), 400
        publisher.publish_raw("sms.delivery-receipts", document["message_id"], [], body)
        return jsonify({"status": "accepted"})

    return acking
