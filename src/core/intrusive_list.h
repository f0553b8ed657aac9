// A doubly-linked list whose nodes live inside the listed objects, so that
// adding and removing a connection never allocates.
#pragma once

namespace gatehouse::core {

template <typename T>
class IntrusiveList;

template <typename T>
class ListHook {
 private:
  friend class IntrusiveList<T>;
  T* prev_ = nullptr;
  T* next_ = nullptr;
  bool linked_ = false;
};

// T derives from ListHook<T>.
template <typename T>
class IntrusiveList {
 public:
  void push_back(T* node) {
    ListHook<T>* h = node;
    h->prev_ = tail_;
    h->next_ = nullptr;
    h->linked_ = true;
    if (tail_)
      static_cast<ListHook<T>*>(tail_)->next_ = node;
    else
      head_ = node;
    tail_ = node;
    ++size_;
  }
  void remove(T* node) {
    ListHook<T>* h = node;
    if (!h->linked_) return;
    if (h->prev_)
      static_cast<ListHook<T>*>(h->prev_)->next_ = h->next_;
    else
      head_ = h->next_;
    if (h->next_)
      static_cast<ListHook<T>*>(h->next_)->prev_ = h->prev_;
    else
      tail_ = h->prev_;
    h->prev_ = h->next_ = nullptr;
    h->linked_ = false;
    --size_;
  }
  T* front() const { return head_; }
  static T* next(T* node) { return static_cast<ListHook<T>*>(node)->next_; }
  bool empty() const { return head_ == nullptr; }
  long size() const { return size_; }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
  long size_ = 0;
};

}  // namespace gatehouse::core
