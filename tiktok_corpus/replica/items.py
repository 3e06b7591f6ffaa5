"""Catalog entries rendered as TikTok's web JSON (itemStruct, envelopes); the blocks pointing at the CDN
(video, images, music) and the signed URLs are :mod:`.media_blocks`'.

Items carry the real shape, noise keys included (penaltyContext, claInfo, zoomCover...), so the
project's parser meets reality: optional keys are sometimes absent, ``statsV2`` is missing on a
share of items, ``createTime`` is sometimes a string.
"""

from __future__ import annotations

import hashlib
import random

from .catalog import Catalog, CatalogVideo, tiktok_rounded
from .media_blocks import MediaBlocks, MediaUrls

STATUS_OK, STATUS_INVALID, STATUS_NOT_FOUND, STATUS_PRIVATE = 0, 10201, 10204, 10216
STATUS_MESSAGES = {
    STATUS_INVALID: "invalid parameters",
    STATUS_NOT_FOUND: "item doesn't exist",
    STATUS_PRIVATE: "private item",
}


class ItemRenderer:
    """Builds the itemStructs of one answer; ``sizes`` are the media files' byte counts.

    ``site_time`` is the answer's one reading of the site clock: every item's counts are computed at it,
    and the envelope's ``extra.now`` carries it, so a client knows exactly when its counts were true.
    """

    def __init__(self, catalog: Catalog, urls: MediaUrls, sizes: dict[str, int], site_time: float) -> None:
        self.catalog = catalog
        self.urls = urls
        self.site_time = site_time
        self._media = MediaBlocks(urls, sizes)

    def item(self, video: CatalogVideo, expire: int) -> dict:
        rng = random.Random(int(video.id))  # per-item noise, stable across calls
        author = self.catalog.authors[video.author]
        counts = video.stats_at(self.site_time)
        stats = {
            "collectCount": counts.collects,
            "commentCount": counts.comments,
            "diggCount": counts.likes,
            "playCount": counts.plays,
            "shareCount": counts.shares,
        }
        item = {
            "AIGCDescription": "",
            "CategoryType": rng.choice([100, 101, 102, 103, 104]),
            "IsHDBitrate": False,
            "ShowAIGC": rng.random() < 0.5,
            "author": self._author(author),
            "authorStats": self._author_stats(author, exact=False),
            "authorStatsV2": self._author_stats(author, exact=True),
            "backendSourceEventTracking": "",
            "collected": False,
            "contents": [{"desc": video.desc, "textExtra": self._text_extra(video)}],
            "createTime": str(video.create_time) if rng.random() < 0.1 else video.create_time,
            "creatorAIComment": {"eligibleVideo": False, "hasAITopic": False, "notEligibleReason": 101},
            "desc": video.desc,
            "digged": False,
            "diversificationId": rng.randint(10000, 10099),
            "duetDisplay": 0,
            "duetEnabled": True,
            "forFriend": False,
            "id": video.id,
            "isAd": video.kind == "ad",
            "isProhibited": False,
            "isReviewing": False,
            "itemCommentStatus": 0,
            "item_control": {"can_repost": True},
            "music": self._media.music(video),
            "officalItem": False,
            "originalItem": False,
            "penaltyContext": {
                "arb_content_safety_status": 102,
                "display_penalty_type": 0,
                "display_policy": 0,
                "display_ui_type": 0,
                "ec_global_verdict": 6,
                "reviewed": 0,
                "status": 102,
                "tns_status": 102,
                "video_status": 10,
            },
            "privateItem": video.kind == "private",
            "secret": video.kind == "private",
            "shareEnabled": True,
            "stats": {key: tiktok_rounded(value) for key, value in stats.items()},
            "stitchDisplay": 0,
            "stitchEnabled": True,
            "suggestedWords": [f"{tag} tiktok" for tag in video.hashtags[:3]],
            "textExtra": self._text_extra(video),
            "textLanguage": "en",
            "textTranslatable": True,
            "video": self._media.video(video, expire) if video.playable else self._media.photo_video(video),
        }
        if video.has_stats_v2:
            item["statsV2"] = {**{key: str(value) for key, value in stats.items()}, "repostCount": "0"}
        if video.hashtags:
            item["challenges"] = [self._challenge(tag) for tag in video.hashtags]
        if video.kind == "photo":
            item["imagePost"] = self._media.image_post(video)
        if video.kind == "ad":
            item.update(
                {
                    "adAuthorization": True,
                    "adLabelVersion": 1,
                    "brandOrganicType": 0,
                    "isECVideo": 0,
                    "adInfo": {"ad_id": video.id[-9:], "is_ad": True},
                }
            )
        if rng.random() < 0.2:
            item["poi"] = {
                "id": str(rng.getrandbits(50)),
                "name": "Replica Park",
                "type": 1,
                "city": "Springfield",
                "country": "US",
            }
        if rng.random() < 0.3:
            item["effectStickers"] = [{"ID": str(rng.getrandbits(30)), "name": "Glow"}]
        if rng.random() < 0.25:
            item["contentContext"] = {"contentTopic": video.hashtags[:1]}
        if rng.random() < 0.1:
            item["locationCreated"] = "US"
        return item

    def share_meta(self, video: CatalogVideo) -> dict:
        author = self.catalog.authors[video.author]
        return {"desc": video.desc, "title": f"{author.nickname} on TikTok"}

    def _author(self, author) -> dict:
        avatar = self.urls.image(f"avatar-{author.id}")
        return {
            "UserStoryStatus": 0,
            "avatarLarger": avatar,
            "avatarMedium": avatar,
            "avatarThumb": avatar,
            "commentSetting": 0,
            "downloadSetting": 0,
            "duetSetting": 0,
            "ftc": False,
            "id": author.id,
            "isADVirtual": False,
            "isEmbedBanned": False,
            "nickname": author.nickname,
            "openFavorite": False,
            "privateAccount": author.private_account,
            "relation": 0,
            "secUid": author.sec_uid,
            "secret": False,
            "shortDramaCreator": {},
            "signature": author.signature,
            "stitchSetting": 0,
            "uniqueId": author.unique_id,
            "verified": author.verified,
        }

    @staticmethod
    def _author_stats(author, *, exact: bool) -> dict:
        counts = {
            "diggCount": author.diggs,
            "followerCount": author.followers,
            "followingCount": author.following,
            "friendCount": 0,
            "heart": author.hearts,
            "heartCount": author.hearts,
            "videoCount": author.videos,
        }
        if exact:
            return {key: str(value) for key, value in counts.items()}
        return {key: tiktok_rounded(value) for key, value in counts.items()}

    def _text_extra(self, video: CatalogVideo) -> list[dict]:
        extras = []
        for mention in video.mentions:
            start = video.desc.find(f"@{mention}")
            author = self.catalog.authors[mention]
            extras.append(
                {
                    "awemeId": "",
                    "end": start + len(mention) + 1,
                    "hashtagName": "",
                    "isCommerce": False,
                    "secUid": author.sec_uid,
                    "start": start,
                    "subType": 0,
                    "type": 0,
                    "userId": author.id,
                    "userUniqueId": mention,
                }
            )
        for tag in video.hashtags:
            start = video.desc.find(f"#{tag}")
            extras.append(
                {
                    "awemeId": "",
                    "end": start + len(tag) + 1,
                    "hashtagId": _tag_id(tag),
                    "hashtagName": tag,
                    "isCommerce": False,
                    "start": start,
                    "subType": 0,
                    "type": 1,
                }
            )
        return extras

    def _challenge(self, tag: str) -> dict:
        return {
            "coverLarger": "",
            "coverMedium": "",
            "coverThumb": "",
            "desc": "",
            "id": _tag_id(tag),
            "profileLarger": "",
            "profileMedium": "",
            "profileThumb": "",
            "title": tag,
        }


def _tag_id(tag: str) -> str:
    return str(int(hashlib.md5(tag.encode()).hexdigest()[:12], 16))


def list_envelope(items: list[dict], *, now_ms: int, logid: str) -> dict:
    return {
        "statusCode": STATUS_OK,
        "status_code": 0,
        "status_msg": "",
        "itemList": items,
        "hasMore": True,
        "cursor": str(len(items)),
        "extra": {"now": now_ms, "logid": logid},
        "log_pb": {"impr_id": logid},
    }


def detail_envelope(item: dict, share_meta: dict, *, now_ms: int, logid: str) -> dict:
    """``/api/item/detail/``'s answer; ``extra`` (with ``fatal_item_ids``) and ``log_pb`` as in public captures."""
    return {
        "extra": {"fatal_item_ids": [], "logid": logid, "now": now_ms},
        "itemInfo": {"itemStruct": item},
        "log_pb": {"impr_id": logid},
        "shareMeta": share_meta,
        "statusCode": STATUS_OK,
        "status_code": 0,
        "status_msg": "",
    }


def status_envelope(status: int) -> dict:
    """An answer carrying only a statusCode (invalid request, deleted, private; with 0, a bot-detected list
    without ``itemList``): ``status_msg`` empty, as the real API's are (the video page's ``statusMsg`` is
    not)."""
    return {"statusCode": status, "status_code": 0, "status_msg": ""}


CAPTCHA_BODY = {
    "code": "10000",
    "from": "",
    "type": "verify",
    "version": "",
    "region": "va",
    "subtype": "slide",
    "detail": "replica-captcha",
    "verify_event": "",
    "fp": "verify_replica",
}
