"""Catalog entries rendered as TikTok's web JSON (itemStruct, envelopes) and signed CDN URLs.

Items carry the real shape, noise keys included (penaltyContext, claInfo, zoomCover...), so the
project's parser meets reality: optional keys are sometimes absent, ``statsV2`` is missing on a
share of items, ``createTime`` is sometimes a string.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from urllib.parse import urlencode

from .catalog import Catalog, CatalogVideo, tiktok_rounded

STATUS_OK, STATUS_INVALID, STATUS_NOT_FOUND, STATUS_PRIVATE = 0, 10201, 10204, 10216
STATUS_MESSAGES = {
    STATUS_INVALID: "invalid parameters",
    STATUS_NOT_FOUND: "item doesn't exist",
    STATUS_PRIVATE: "private item",
}


class MediaUrls:
    """Signed CDN URLs: ``/cdn/video/{id}.mp4?...&expire=..&signature=..&tk=tt_chain_token``."""

    def __init__(self, base_url: str, secret: bytes) -> None:
        self.base_url = base_url
        self._secret = secret

    def signature(self, video_id: str, expire: int) -> str:
        message = f"{video_id}:{expire}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def video(self, video_id: str, expire: int, *, host: str = "v16", watermark: bool = False) -> str:
        query = {
            "a": "1988",
            "bti": "ODszNWYuMDE6",
            "ch": "0",
            "cr": "3",
            "dr": "0",
            "er": "0",
            "lr": "all",
            "net": "0",
            "cd": "0|0|0|0",
            "cv": "1",
            "br": "0",
            "bt": "0",
            "ds": "4",
            "ft": "aEeq8qT0mIoPD12T",
            "mime_type": "video_mp4",
            "qs": "0",
            "rc": host,
            "vvpl": "1",
            "l": f"2026{video_id[-12:]}",
            "btag": "e00090000",
            "expire": str(expire),
            "policy": "2",
            "signature": self.signature(video_id, expire),
            "tk": "tt_chain_token",
        }
        if watermark:
            query["wm"] = "1"
        return f"{self.base_url}/cdn/video/{video_id}.mp4?{urlencode(query)}"

    def play_api(self, video_id: str) -> str:
        """The ``www.tiktok.com/aweme/v1/play/`` kind of URL, which answers tiny non-video bodies."""
        query = {
            "faid": "1988",
            "file_id": hashlib.md5(video_id.encode()).hexdigest(),
            "is_play_url": "1",
            "item_id": video_id,
            "line": "0",
            "ply_type": "2",
            "tk": "tt_chain_token",
            "video_id": f"v{video_id[-10:]}",
        }
        return f"{self.base_url}/aweme/v1/play/?{urlencode(query)}"

    def image(self, name: str) -> str:
        return f"{self.base_url}/cdn/img/{name}.jpeg?x-expires=1799999999&x-signature=replica"


class ItemRenderer:
    """Builds the itemStructs of one answer; ``sizes`` are the media files' byte counts.

    ``site_time`` is the answer's one reading of the site clock: every item's counts are computed at it,
    and the envelope's ``extra.now`` carries it, so a client knows exactly when its counts were true.
    """

    def __init__(self, catalog: Catalog, urls: MediaUrls, sizes: dict[str, int], site_time: float) -> None:
        self.catalog = catalog
        self.urls = urls
        self.sizes = sizes
        self.site_time = site_time

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
            "music": self._music(video),
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
            "video": self._video(video, expire) if video.playable else self._photo_video(video),
        }
        if video.has_stats_v2:
            item["statsV2"] = {**{key: str(value) for key, value in stats.items()}, "repostCount": "0"}
        if video.hashtags:
            item["challenges"] = [self._challenge(tag) for tag in video.hashtags]
        if video.kind == "photo":
            item["imagePost"] = self._image_post(video)
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

    def _music(self, video: CatalogVideo) -> dict:
        music = video.music
        cover = self.urls.image(f"music-{music.id}")
        return {
            "authorName": music.author_name,
            "coverLarge": cover,
            "coverMedium": cover,
            "coverThumb": cover,
            "duration": music.duration,
            "id": music.id,
            "isCopyrighted": not music.original,
            "is_commerce_music": True,
            "is_unlimited_music": False,
            "original": music.original,
            "playUrl": f"{self.urls.base_url}/cdn/music/{music.id}.mp3",
            "private": False,
            "shoot_duration": music.duration,
            "title": music.title,
            "tt2dsp": {},
        }

    def _video(self, video: CatalogVideo, expire: int) -> dict:
        media = video.media
        assert media is not None, "only playable kinds have a video block"
        size = self.sizes.get(video.id, 0)
        bitrate = int(size * 8 / media.duration_s) if media.duration_s else 0
        short_side = min(media.width, media.height)
        definition = f"{short_side}p" if short_side != 576 else "540p"
        file_hash = hashlib.md5(f"{video.id}:{size}".encode()).hexdigest()
        uri = f"v15044gf0000{video.id[-12:]}"
        url_list = [
            self.urls.video(video.id, expire, host="v16"),
            self.urls.video(video.id, expire, host="v19"),
            self.urls.play_api(video.id),
        ]
        play_addr = {
            "DataSize": size,
            "FileCs": f"c:0-{size // 400}-{file_hash[:4]}",
            "FileHash": file_hash,
            "Height": media.height,
            "Uri": uri,
            "UrlKey": f"{uri}_{media.tiktok_codec}_{definition}_{bitrate}",
            "UrlList": url_list,
            "Width": media.width,
        }
        gear = "normal_720_0" if short_side >= 720 else "lowest_540_0"
        if media.codec == "hevc":
            gear = "adapt_540_1"
        cover = self.urls.image(f"cover-{video.id}")
        return {
            "PlayAddrStruct": play_addr,
            "VQScore": "66.47",
            "bitrate": bitrate,
            "bitrateInfo": [
                {
                    "Bitrate": bitrate,
                    "BitrateFPS": round(media.fps),
                    "CodecType": media.tiktok_codec,
                    "Format": "mp4",
                    "GearName": gear,
                    "MVMAF": "{}",
                    "PlayAddr": play_addr,
                    "QualityType": 10,
                    "VideoExtra": '{"PktOffsetMap":"","audio_bit_rate":32000}',
                }
            ],
            "claInfo": {"enableAutoCaption": False, "hasOriginalAudio": media.has_audio, "noCaptionReason": 1},
            "codecType": media.tiktok_codec,
            "cover": cover,
            "definition": definition,
            "downloadAddr": self.urls.video(video.id, expire, watermark=True),
            "duration": int(round(media.duration_s)),
            "dynamicCover": cover,
            "encodeUserTag": "",
            "encodedType": "normal",
            "format": "mp4",
            "height": media.height,
            "id": video.id,
            "originCover": cover,
            "playAddr": url_list[0],
            "ratio": definition,
            "size": size,
            "subtitleInfos": [],
            "videoID": uri,
            "videoQuality": "normal",
            "volumeInfo": {"Loudness": -22.6, "Peak": 0.66} if media.has_audio else {},
            "width": media.width,
            "zoomCover": {"240": cover, "480": cover, "720": cover, "960": cover},
        }

    def _photo_video(self, video: CatalogVideo) -> dict:
        cover = self.urls.image(f"photo-{video.id}-0")
        return {
            "cover": cover,
            "duration": 0,
            "height": 0,
            "id": video.id,
            "originCover": cover,
            "ratio": "",
            "volumeInfo": {},
            "width": 0,
        }

    def _image_post(self, video: CatalogVideo) -> dict:
        def image(index: int) -> dict:
            url = self.urls.image(f"photo-{video.id}-{index}")
            return {"imageHeight": 2000, "imageURL": {"urlList": [url, url]}, "imageWidth": 1600}

        return {
            "cover": image(0),
            "images": [image(i) for i in range(video.images)],
            "shareCover": image(0),
            "title": "",
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
    """An answer carrying only a statusCode (invalid request, deleted, private)."""
    return {"statusCode": status, "status_code": 0, "status_msg": STATUS_MESSAGES.get(status, "")}


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
