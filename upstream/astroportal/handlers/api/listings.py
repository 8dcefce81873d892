"""/api/listing: a user's own lists (favorites, rejected candidates)."""

from __future__ import annotations

from ...domain import listings
from ...errors import not_found
from ..base import APIHandler, auth_required, rule
from ...validate import shown


class ListingListHandler(APIHandler):
    @auth_required
    def get(self) -> None:
        """Your listings, newest first.
        ---
        summary: List your listings
        tags: [listings]
        parameters:
          - in: query
            name: listName
            schema: {type: string, enum: [favorites, rejected_candidates]}
        responses:
          200:
            description: A list of `{id, user_id, obj_id, list_name, created_at}`.
          400:
            description: An unknown listName.
          401:
            description: Not logged in.
        """
        self.success(listings.get_listings(self.session, self.current_user, self.query("listName")))

    @rule("POST", "/api/listing")
    def post(self) -> None:
        """Put an object on one of your lists.
        ---
        summary: Add an object to one of your lists
        tags: [listings]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [obj_id, list_name]
                properties:
                  obj_id: {type: string}
                  list_name: {type: string, enum: [favorites, rejected_candidates]}
        responses:
          200:
            description: '`{"id": N}`; listing the same object again returns the same id.'
          400:
            description: A missing or invalid field.
          404:
            description: No such object visible to you.
        """
        self.success(listings.add_listing(self.session, self.current_user, self.get_json()))


class ListingHandler(APIHandler):
    @rule("DELETE", "/api/listing/{id}")
    def delete(self, listing_id: str) -> None:
        """Remove one of your listings.
        ---
        summary: Remove one of your listings
        tags: [listings]
        parameters:
          - {in: path, name: listing_id, required: true, schema: {type: integer}}
        responses:
          200:
            description: '`{"id": N}`.'
          403:
            description: The listing is another user's.
          404:
            description: No such listing.
        """
        if not listing_id.isdigit() or int(listing_id) > 2**31 - 1:
            raise not_found(f"listing {shown(listing_id)}")
        self.success(listings.delete_listing(self.session, self.current_user, int(listing_id)))


ROUTES = [
    (r"/api/listing/?", ListingListHandler),
    (r"/api/listing/([^/]+)/?", ListingHandler),
]
